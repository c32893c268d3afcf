"""HTTP routes of sales handoff and lead KPIs. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sodate.deps import Caller, allowed
from sodate.handoff import rules, service
from sodate.handoff.models import HandoffState
from sodate.handoff.schemas import (
    HandoffOut,
    HandoffPage,
    HandoffRulesIn,
    HandoffRulesOut,
    LeadKpis,
    RejectIn,
)
from sodate.handoff.service import Decider
from sodate.workspaces.roles import Permission
from sodate.workspaces.schemas import TIME_PARAMETER_HELP, TimeParameter

router = APIRouter(prefix="/api/v1")

HandoffId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


@router.get("/handoff", response_model=HandoffRulesOut, tags=["handoff"])
def get_rules(caller: Caller = Depends(allowed(Permission.READ))) -> HandoffRulesOut:
    with caller.runtime.db.read() as session:
        return rules.get_rules(session, caller.workspace_id)


@router.put("/handoff", response_model=HandoffRulesOut, tags=["handoff"])
def put_rules(
    body: HandoffRulesIn, caller: Caller = Depends(allowed(Permission.MARKETING_WRITE))
) -> HandoffRulesOut:
    """Replace how new MQLs are handed to sales (owners, notifications, SLA, CRM webhook)."""
    can_email = caller.runtime.settings.smtp_url is not None
    with caller.runtime.db.transaction() as session:
        return rules.put_rules(
            session, caller.workspace_id, body, can_email=can_email, now=caller.now()
        )


@router.get("/handoffs", response_model=HandoffPage, tags=["handoff"])
def list_handoffs(
    caller: Caller = Depends(allowed(Permission.READ)),
    state: HandoffState | None = None,
    owner_user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> HandoffPage:
    with caller.runtime.db.read() as session:
        return service.list_handoffs(
            session,
            caller.workspace_id,
            state=state,
            owner_user_id=owner_user_id,
            limit=limit,
            after=cursor,
        )


@router.get("/handoffs/{handoff_id}", response_model=HandoffOut, tags=["handoff"])
def get_handoff(
    handoff_id: HandoffId, caller: Caller = Depends(allowed(Permission.READ))
) -> HandoffOut:
    with caller.runtime.db.read() as session:
        return service.get_handoff(session, caller.workspace_id, handoff_id)


@router.post("/handoffs/{handoff_id}/accept", response_model=HandoffOut, tags=["handoff"])
def accept(
    handoff_id: HandoffId, caller: Caller = Depends(allowed(Permission.SALES_WORK))
) -> HandoffOut:
    """The owner takes the lead: the contact becomes SQL."""
    with caller.runtime.db.transaction() as session:
        return service.accept(
            session,
            caller.workspace_id,
            handoff_id,
            by=Decider.of(caller.principal),
            now=caller.now(),
        )


@router.post("/handoffs/{handoff_id}/reject", response_model=HandoffOut, tags=["handoff"])
def reject(
    handoff_id: HandoffId,
    body: RejectIn,
    caller: Caller = Depends(allowed(Permission.SALES_WORK)),
) -> HandoffOut:
    """Send the lead back to nurturing with a reason (a lead again, in a new cycle)."""
    with caller.runtime.db.transaction() as session:
        return service.reject(
            session,
            caller.workspace_id,
            handoff_id,
            reason=body.reason,
            reset_engagement=body.reset_engagement,
            by=Decider.of(caller.principal),
            now=caller.now(),
        )


@router.get("/reports/leads", response_model=LeadKpis, tags=["handoff"])
def lead_kpis(
    caller: Caller = Depends(allowed(Permission.READ)),
    since: Annotated[TimeParameter | None, Query(description=TIME_PARAMETER_HELP)] = None,
    until: Annotated[TimeParameter | None, Query(description=TIME_PARAMETER_HELP)] = None,
) -> LeadKpis:
    """MQLs, handoffs, MQL→SQL conversion and lead time from `since` (default: 30 days before
    `until`, or before now) until `until` (default: no end)."""
    with caller.runtime.db.read() as session:
        return service.lead_report(
            session, caller.workspace_id, since=since, until=until, now=caller.now()
        )
