"""HTTP routes of contacts' consents. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sodate.consents import service
from sodate.consents.models import Channel, ConsentSource
from sodate.consents.schemas import ConsentIn, ConsentOut, ConsentRecordPage, Purpose
from sodate.contacts import service as contacts
from sodate.deps import Caller, allowed
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1")

ContactId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


@router.get("/contacts/{contact_id}/consents", response_model=list[ConsentOut], tags=["consents"])
def contact_consents(
    contact_id: ContactId, caller: Caller = Depends(allowed(Permission.READ))
) -> list[ConsentOut]:
    """The contact's consent now for each channel and purpose it was ever asked about."""
    with caller.runtime.db.read() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.consents_now(session, caller.workspace_id, live_id)


@router.post("/contacts/{contact_id}/consents", response_model=list[ConsentOut], tags=["consents"])
def record_consent(
    contact_id: ContactId,
    body: ConsentIn,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
) -> list[ConsentOut]:
    """Record that the person gave or withdrew consent, with its proof; return the contact's
    consents now. Segments and lifecycle rules reading consent follow before the response."""
    principal = caller.principal
    recorder = service.Recorder(
        ConsentSource.USER if principal.via_session else ConsentSource.API,
        user_id=principal.user_id,
        api_key_id=principal.api_key_id,
    )
    with caller.runtime.db.transaction() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.record_consent(
            session, caller.workspace_id, live_id, body, recorder=recorder, now=caller.now()
        )


@router.get(
    "/contacts/{contact_id}/consents/records",
    response_model=ConsentRecordPage,
    tags=["consents"],
)
def consent_records(
    contact_id: ContactId,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ConsentRecordPage:
    """Every grant and withdrawal of the contact's, oldest first, with its proof."""
    with caller.runtime.db.read() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.list_records(
            session, caller.workspace_id, contact_id=live_id, limit=limit, after=cursor
        )


@router.get("/consents", response_model=ConsentRecordPage, tags=["consents"])
def list_records(
    caller: Caller = Depends(allowed(Permission.READ)),
    channel: Channel | None = None,
    purpose: Annotated[Purpose | None, Query()] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ConsentRecordPage:
    """Every consent record of the workspace, oldest first, with its proof: the opt-in records
    that Japan's 特定電子メール法 asks a sender to keep."""
    with caller.runtime.db.read() as session:
        return service.list_records(
            session,
            caller.workspace_id,
            channel=channel,
            purpose=purpose,
            limit=limit,
            after=cursor,
        )
