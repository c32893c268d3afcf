"""HTTP routes of lifecycle rules and of contacts' stages. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sodate.contacts import service as contacts
from sodate.deps import Caller, allowed
from sodate.handoff import service as handoff
from sodate.lifecycle import service
from sodate.lifecycle.models import ChangeSource
from sodate.lifecycle.progress import Actor
from sodate.lifecycle.schemas import (
    ContactStageOut,
    LifecycleRulesIn,
    LifecycleRulesOut,
    RulesApplied,
    StageChangeIn,
    StageChangePage,
    StageCount,
)
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1")

ContactId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


@router.get("/lifecycle", response_model=LifecycleRulesOut, tags=["lifecycle"])
def get_rules(caller: Caller = Depends(allowed(Permission.READ))) -> LifecycleRulesOut:
    with caller.runtime.db.read() as session:
        return service.get_rules(session, caller.workspace_id)


@router.put("/lifecycle", response_model=RulesApplied, tags=["lifecycle"])
def put_rules(
    body: LifecycleRulesIn, caller: Caller = Depends(allowed(Permission.MARKETING_WRITE))
) -> RulesApplied:
    """Replace the workspace's lifecycle rules; every contact is moved by them before the
    response."""
    with caller.runtime.db.transaction() as session:
        return service.put_rules(session, caller.workspace_id, body, now=caller.now())


@router.get("/lifecycle/stages", response_model=list[StageCount], tags=["lifecycle"])
def stage_counts(caller: Caller = Depends(allowed(Permission.READ))) -> list[StageCount]:
    """How many contacts are at each stage now."""
    with caller.runtime.db.read() as session:
        return service.stage_counts(session, caller.workspace_id)


@router.get("/lifecycle/changes", response_model=StageChangePage, tags=["lifecycle"])
def list_changes(
    caller: Caller = Depends(allowed(Permission.READ)), limit: Limit = 100, cursor: Cursor = None
) -> StageChangePage:
    """Every stage change of the workspace, oldest first: from, to, when and by what."""
    with caller.runtime.db.read() as session:
        return service.list_changes(session, caller.workspace_id, limit=limit, after=cursor)


@router.get(
    "/contacts/{contact_id}/stage", response_model=ContactStageOut | None, tags=["lifecycle"]
)
def contact_stage(
    contact_id: ContactId, caller: Caller = Depends(allowed(Permission.READ))
) -> ContactStageOut | None:
    """The contact's stage (null: none yet)."""
    with caller.runtime.db.read() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.contact_stage(session, caller.workspace_id, live_id)


@router.put("/contacts/{contact_id}/stage", response_model=ContactStageOut, tags=["lifecycle"])
def set_stage(
    contact_id: ContactId,
    body: StageChangeIn,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
) -> ContactStageOut:
    """Move the contact to any stage by hand; recorded as by this user or API key."""
    principal = caller.principal
    actor = Actor(
        ChangeSource.USER if principal.via_session else ChangeSource.API,
        user_id=principal.user_id,
        api_key_id=principal.api_key_id,
        reason=body.reason,
    )
    with caller.runtime.db.transaction() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        handoff.check_stage_move(
            session, caller.workspace_id, live_id, by=handoff.Decider.of(principal)
        )
        return service.set_stage(
            session, caller.workspace_id, live_id, body.stage, actor=actor, now=caller.now()
        )


@router.get(
    "/contacts/{contact_id}/stage/changes", response_model=StageChangePage, tags=["lifecycle"]
)
def contact_changes(
    contact_id: ContactId,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> StageChangePage:
    """The contact's stage changes, oldest first."""
    with caller.runtime.db.read() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.list_changes(
            session, caller.workspace_id, contact_id=live_id, limit=limit, after=cursor
        )
