"""Saved definitions that other definitions read: segments read scoring models, lifecycle
rules and handoff assignment rules read models and segments (and, later, journeys read all
three). Saving a model recomputes the segments that read it and lifts the contacts its MQL
threshold now reaches; deleting a definition is refused while anything reads it, with the
list of its readers. One place, so each capability's service stays unaware of the
capabilities built on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sodate.documents import parse_documents
from sodate.errors import Conflict, InvalidInput
from sodate.handoff import rules as handoff_rules
from sodate.lifecycle import service as lifecycle
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
    in_use = lifecycle.threshold_in_use(session, workspace_id)
    if in_use is not None and in_use[0] == key and in_use[1] not in data.thresholds:
        raise InvalidInput(
            f"the lifecycle rules make contacts MQL at threshold {in_use[1]!r} of this model",
            details=[
                {
                    "loc": ["thresholds"],
                    "msg": f"keep the threshold {in_use[1]!r}: the lifecycle rules use it",
                    "type": "in_use",
                }
            ],
        )
    saved, created = scoring.put_model(session, workspace_id, key, data, now=now)
    segments.recompute_readers_of_model(session, workspace_id, key, now=now)
    lifecycle.lift_to_mql(session, workspace_id, now=now)
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
    """Delete a model; refused while a segment or the lifecycle rules read it (listed in the
    error)."""
    readers = [
        {"kind": "segment", "key": reader}
        for reader in segments.segments_reading_model(session, workspace_id, key)
    ]
    in_use = lifecycle.threshold_in_use(session, workspace_id)
    if in_use is not None and in_use[0] == key:
        readers.append({"kind": "lifecycle", "key": "mql"})
    readers += [
        {"kind": "lifecycle", "key": stage}
        for stage in lifecycle.rules_reading_model(session, workspace_id, key)
    ]
    if readers:
        raise Conflict(f"scoring model {key!r} is used by {_names(readers)}", details=readers)
    scoring.delete_model(session, workspace_id, key)


def delete_segment(session: Session, workspace_id: str, key: str, *, now: datetime) -> None:
    """Delete a segment; refused while another segment, a lifecycle rule or a handoff
    assignment rule reads it."""
    readers = [
        {"kind": "lifecycle", "key": stage}
        for stage in lifecycle.rules_reading_segment(session, workspace_id, key)
    ]
    readers += [
        {"kind": "handoff", "key": rule}
        for rule in handoff_rules.rules_reading_segment(session, workspace_id, key)
    ]
    if readers:
        raise Conflict(f"segment {key!r} is used by {_names(readers)}", details=readers)
    segments.delete_segment(session, workspace_id, key, now=now)


def _names(readers: list[dict[str, str]]) -> str:
    return ", ".join(f"{reader['kind']} {reader['key']}" for reader in readers)
