"""HTTP routes of scoring models and of contacts' scores. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from sodate import definitions
from sodate.contacts import service as contacts
from sodate.deps import Caller, allowed
from sodate.scoring import service
from sodate.scoring.schemas import (
    KEY_PATTERN,
    CrossingPage,
    HistoryPage,
    ModelScore,
    ScoringModelIn,
    ScoringModelOut,
    ScoringModelSaved,
)
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1")

ModelKey = Annotated[str, Path(min_length=1, max_length=100, pattern=KEY_PATTERN)]
ContactId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


@router.get("/scoring-models", response_model=list[ScoringModelOut], tags=["scoring"])
def list_models(caller: Caller = Depends(allowed(Permission.READ))) -> list[ScoringModelOut]:
    with caller.runtime.db.read() as session:
        return service.list_models(session, caller.workspace_id)


@router.put("/scoring-models/{key}", response_model=ScoringModelSaved, tags=["scoring"])
def put_model(
    key: ModelKey,
    body: ScoringModelIn,
    response: Response,
    caller: Caller = Depends(allowed(Permission.MARKETING_WRITE)),
) -> ScoringModelSaved:
    """Create or replace a model; every contact is scored with it (and the segments that read
    it recomputed) before the response."""
    with caller.runtime.db.transaction() as session:
        saved, created = definitions.put_scoring_model(
            session, caller.workspace_id, key, body, now=caller.now()
        )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return saved


@router.get("/scoring-models/{key}", response_model=ScoringModelOut, tags=["scoring"])
def get_model(key: ModelKey, caller: Caller = Depends(allowed(Permission.READ))) -> ScoringModelOut:
    with caller.runtime.db.read() as session:
        return service.get_model(session, caller.workspace_id, key)


@router.delete("/scoring-models/{key}", status_code=204, tags=["scoring"])
def delete_model(
    key: ModelKey, caller: Caller = Depends(allowed(Permission.MARKETING_WRITE))
) -> Response:
    with caller.runtime.db.transaction() as session:
        definitions.delete_scoring_model(session, caller.workspace_id, key)
    return Response(status_code=204)


@router.get("/scoring-models/{key}/crossings", response_model=CrossingPage, tags=["scoring"])
def list_crossings(
    key: ModelKey,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> CrossingPage:
    """Thresholds reached (`reached: true`) and fallen below, oldest first, with the cause."""
    with caller.runtime.db.read() as session:
        return service.list_crossings(session, caller.workspace_id, key, limit=limit, after=cursor)


@router.get("/contacts/{contact_id}/scores", response_model=dict[str, ModelScore], tags=["scoring"])
def contact_scores(
    contact_id: ContactId, caller: Caller = Depends(allowed(Permission.READ))
) -> dict[str, ModelScore]:
    """The contact's fit, engagement and total in every model, with each rule's points now."""
    with caller.runtime.db.read() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.contact_scores(session, caller.workspace_id, live_id, now=caller.now())


@router.get(
    "/contacts/{contact_id}/scores/{key}/history", response_model=HistoryPage, tags=["scoring"]
)
def score_history(
    contact_id: ContactId,
    key: ModelKey,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> HistoryPage:
    """The contact's score after each change, oldest first (engagement decays in between)."""
    with caller.runtime.db.read() as session:
        live_id = contacts.live_contact_id(session, caller.workspace_id, contact_id)
        return service.score_history(
            session, caller.workspace_id, live_id, key, limit=limit, after=cursor
        )
