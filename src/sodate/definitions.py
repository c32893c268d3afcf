"""Saved definitions that other definitions read: segments read scoring models (and, later,
journeys read both). Saving a model recomputes the segments that read it; deleting one is
refused while anything reads it, with the list of its readers. One place, so each capability's
service stays unaware of the capabilities built on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sodate.documents import parse_documents
from sodate.errors import Conflict
from sodate.scoring import service as scoring
from sodate.scoring.schemas import (
    ScoringModelApplied,
    ScoringModelDocument,
    ScoringModelIn,
    ScoringModelSaved,
)
from sodate.segments import service as segments


def put_scoring_model(
    session: Session, workspace_id: str, key: str, data: ScoringModelIn, *, now: datetime
) -> tuple[ScoringModelSaved, bool]:
    """Save a model (every contact rescored), then recompute the segments that read it."""
    saved, created = scoring.put_model(session, workspace_id, key, data, now=now)
    segments.recompute_readers_of_model(session, workspace_id, key, now=now)
    return saved, created


def apply_scoring_documents(
    session: Session, workspace_id: str, documents: Any, *, now: datetime
) -> list[ScoringModelApplied]:
    """Create or replace the models of a file; nothing is saved unless all are valid."""
    applied = []
    for key, document in parse_documents(documents, ScoringModelDocument, plural="models").items():
        saved, created = put_scoring_model(session, workspace_id, key, document, now=now)
        applied.append(
            ScoringModelApplied(
                key=key,
                created=created,
                scored_contacts=saved.model.scored_contacts,
                reached=saved.reached,
                fell=saved.fell,
            )
        )
    return applied


def delete_scoring_model(session: Session, workspace_id: str, key: str) -> None:
    """Delete a model; refused while a segment reads it (listed in the error)."""
    readers = segments.segments_reading_model(session, workspace_id, key)
    if readers:
        raise Conflict(
            f"scoring model {key!r} is used by segments: {', '.join(readers)}",
            details=[{"kind": "segment", "key": reader} for reader in readers],
        )
    scoring.delete_model(session, workspace_id, key)
