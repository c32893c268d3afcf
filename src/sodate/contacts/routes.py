"""HTTP routes of contacts and companies. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from sodate import profile
from sodate.contacts import service, writes
from sodate.contacts.schemas import (
    CompanyOut,
    CompanyPage,
    CompanyUpsert,
    ContactOut,
    ContactPage,
    ContactPatch,
    ContactUpsert,
    ContactUpserted,
    MergeIn,
    MergeOut,
)
from sodate.contacts.service import ContactFilter, ContactMoved
from sodate.deps import QUERY_PREFIXES, Caller, allowed
from sodate.errors import InvalidInput
from sodate.events import service as events
from sodate.events.schemas import EventPage
from sodate.pipeline import merge_contacts
from sodate.workspaces.roles import Permission


def _no_nul(request: Request) -> None:
    """Refuse NUL characters in the path and the query: PostgreSQL's text cannot hold them."""
    params = (
        ("path", request.path_params.items()),
        ("query", request.query_params.multi_items()),
    )
    bad = [
        [where, name]
        for where, items in params
        for name, value in items
        if "\x00" in name or "\x00" in str(value)
    ]
    if bad:
        raise InvalidInput(
            "NUL characters are not allowed",
            details=[
                {"loc": loc, "msg": "contains a NUL character", "type": "value"} for loc in bad
            ],
        )


router = APIRouter(prefix="/api/v1", dependencies=[Depends(_no_nul)])

ContactId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


def _moved(request: Request, exc: ContactMoved, old_id: int) -> RedirectResponse:
    path = request.url.path.replace(f"/contacts/{old_id}", f"/contacts/{exc.contact_id}", 1)
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(path + query, status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get(
    "/contacts",
    response_model=ContactPage,
    tags=["contacts"],
    openapi_extra={QUERY_PREFIXES: ["trait."]},
)
def list_contacts(
    request: Request,
    caller: Caller = Depends(allowed(Permission.READ)),
    email: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    phone: str | None = None,
    external_id: Annotated[
        str | None, Query(description="`type:value`, e.g. `line:U4af4980629…`")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Search name, email, phone")] = None,
    company_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ContactPage:
    """List contacts. Filter by identifier, search text, company, or `trait.<name>=value`."""
    where = ContactFilter(
        email=email,
        user_id=user_id,
        anonymous_id=anonymous_id,
        phone=phone,
        external=_external(external_id),
        q=q,
        company_id=company_id,
        traits=_trait_filters(request),
    )
    with caller.runtime.db.read() as session:
        page = service.list_contacts(session, caller.workspace_id, where, limit=limit, after=cursor)
        items = profile.complete(session, caller.workspace_id, page.items, now=caller.now())
        return page.model_copy(update={"items": items})


def _trait_filters(request: Request) -> tuple[tuple[str, str], ...]:
    filters = tuple(
        (key.removeprefix("trait."), value)
        for key, value in request.query_params.multi_items()
        if key.startswith("trait.") and len(key) > len("trait.")
    )
    for name, _value in filters:
        if '"' in name:  # a JSON path on SQLite cannot name it
            raise InvalidInput(
                "a trait filter cannot name a trait with a double quote",
                details=[
                    {
                        "loc": ["query", f"trait.{name}"],
                        "msg": "contains a double quote",
                        "type": "unsupported_name",
                    }
                ],
            )
    return filters


def _external(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    kind, _, identifier = value.partition(":")
    if not kind or not identifier:
        msg = f"must be `type:value`, not {value!r}"
        raise InvalidInput(
            "external_id must be `type:value`",
            details=[{"loc": ["query", "external_id"], "msg": msg, "type": "value"}],
        )
    return kind, identifier


@router.post("/contacts", response_model=ContactUpserted, tags=["contacts"])
def upsert_contact(
    data: ContactUpsert,
    response: Response,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
) -> ContactUpserted:
    """Create a contact, or update the one its identifiers lead to (merging if they say so)."""
    with caller.runtime.db.transaction() as session:
        result = writes.upsert_contact(session, caller.workspace_id, data, now=caller.now())
        contact = profile.complete_one(
            session,
            caller.workspace_id,
            service.get_contact(session, caller.workspace_id, result.contact_id),
            now=caller.now(),
        )
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return ContactUpserted(created=result.created, contact=contact)


@router.get("/contacts/{contact_id}", response_model=ContactOut, tags=["contacts"])
def get_contact(
    request: Request, contact_id: ContactId, caller: Caller = Depends(allowed(Permission.READ))
) -> ContactOut | RedirectResponse:
    """A contact. A merged contact's old id answers 308 with the surviving contact's URL."""
    with caller.runtime.db.read() as session:
        try:
            contact = service.get_contact(session, caller.workspace_id, contact_id)
        except ContactMoved as exc:
            return _moved(request, exc, contact_id)
        return profile.complete_one(session, caller.workspace_id, contact, now=caller.now())


@router.patch("/contacts/{contact_id}", response_model=ContactOut, tags=["contacts"])
def patch_contact(
    contact_id: ContactId,
    patch: ContactPatch,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
) -> ContactOut:
    with caller.runtime.db.transaction() as session:
        live_id = writes.patch_contact(
            session, caller.workspace_id, contact_id, patch, now=caller.now()
        )
        contact = service.get_contact(session, caller.workspace_id, live_id)
        return profile.complete_one(session, caller.workspace_id, contact, now=caller.now())


@router.get("/contacts/{contact_id}/timeline", response_model=EventPage, tags=["contacts"])
def contact_timeline(
    request: Request,
    contact_id: ContactId,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> EventPage | RedirectResponse:
    """The contact's events, newest first."""
    with caller.runtime.db.read() as session:
        try:
            service.get_contact(session, caller.workspace_id, contact_id)
        except ContactMoved as exc:
            return _moved(request, exc, contact_id)
        return events.timeline(session, caller.workspace_id, contact_id, limit=limit, before=cursor)


@router.post("/contacts/{contact_id}/merge", response_model=ContactOut, tags=["contacts"])
def merge_into(
    contact_id: ContactId,
    data: MergeIn,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
) -> ContactOut:
    """Merge another contact into this one: its identities, traits, events and orders move."""
    with caller.runtime.db.transaction() as session:
        survivor = service.live_contact_id(session, caller.workspace_id, contact_id)
        merged = service.live_contact_id(session, caller.workspace_id, data.contact_id)
        if survivor == merged:
            reason = (
                "a contact cannot be merged into itself"
                if contact_id == data.contact_id
                else f"contacts {contact_id} and {data.contact_id} are one already: both lead"
                f" to contact {survivor}"
            )
            raise InvalidInput(
                reason, details=[{"loc": ["contact_id"], "msg": reason, "type": "merge"}]
            )
        merge_contacts(
            session, caller.workspace_id, survivor, merged, reason=data.reason, now=caller.now()
        )
        contact = service.get_contact(session, caller.workspace_id, survivor)
        return profile.complete_one(session, caller.workspace_id, contact, now=caller.now())


@router.get("/contacts/{contact_id}/merges", response_model=list[MergeOut], tags=["contacts"])
def contact_merges(
    contact_id: ContactId, caller: Caller = Depends(allowed(Permission.READ))
) -> list[MergeOut]:
    """What was merged into this contact, when and why."""
    with caller.runtime.db.read() as session:
        live_id = service.live_contact_id(session, caller.workspace_id, contact_id)
        return service.list_merges(session, caller.workspace_id, live_id)


@router.get("/companies", response_model=CompanyPage, tags=["companies"])
def list_companies(
    caller: Caller = Depends(allowed(Permission.READ)),
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CompanyPage:
    with caller.runtime.db.read() as session:
        return service.list_companies(session, caller.workspace_id, q=q, limit=limit, after=cursor)


@router.get("/companies/{company_id}", response_model=CompanyOut, tags=["companies"])
def get_company(
    company_id: ContactId, caller: Caller = Depends(allowed(Permission.READ))
) -> CompanyOut:
    with caller.runtime.db.read() as session:
        return service.get_company(session, caller.workspace_id, company_id)


@router.put("/companies/{group_key}", response_model=CompanyOut, tags=["companies"])
def put_company(
    group_key: Annotated[str, Path(min_length=1, max_length=200)],
    data: CompanyUpsert,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
) -> CompanyOut:
    """Create or update a company by its group key (the `groupId` of `group` calls)."""
    with caller.runtime.db.transaction() as session:
        company_id = writes.put_company(
            session, caller.workspace_id, group_key, data.traits, now=caller.now()
        )
        return service.get_company(session, caller.workspace_id, company_id)
