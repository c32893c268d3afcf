"""Scores in real time: the scoring step of the event pipeline, and what a merge does to scores.

For each model, the batch's events (in time order) give engagement points within the rules'
caps, and the contacts whose profile changed (or that are new) have their fit rules evaluated
again in memory. Only the contacts touched are read and written, in a handful of statements
for the whole batch. A total that reaches or leaves a threshold is recorded as a crossing; if
decay had already carried it across one since it was last looked at, that crossing (cause
`time`) is recorded first. The fit rules are evaluated here once for every model; each model
then scores the batch in `realtime_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sodate.conditions.state import CONTACTS_AT_ONCE, load_states
from sodate.contacts.resolution import PlannedMerge
from sodate.db.bulk import execute_many
from sodate.events.pipeline import EventBatch
from sodate.scoring.live import LiveModel, live_models
from sodate.scoring.models import ScoreCause
from sodate.scoring.realtime_batch import BatchScoring, Fits
from sodate.scoring.recompute import recompute_model
from sodate.workspaces import service as workspaces


def update_scores(session: Session, batch: EventBatch) -> None:
    models = live_models(session, batch.workspace_id)
    if not models:
        return
    zone = workspaces.workspace_zone(session, batch.workspace_id)
    refit = sorted(batch.changed_profiles | batch.created_contacts)
    fits = _fits(session, batch.workspace_id, models, refit, now=batch.now, zone=zone)
    named = sorted(
        (event for event in batch.events if event.name is not None),
        key=lambda event: (event.timestamp, event.event_id),
    )
    for model in models:
        changed = BatchScoring(session, batch.workspace_id, model, batch.now, zone).run(named, fits)
        batch.changed_scores |= changed


def _fits(
    session: Session,
    workspace_id: str,
    models: Sequence[LiveModel],
    refit: list[int],
    *,
    now: datetime,
    zone: ZoneInfo,
) -> Fits:
    """Every model's fit rules over `refit`, whose state is loaded `CONTACTS_AT_ONCE` at a time:
    a batch of new contacts (an import's, a fresh site's) is most of the batch."""
    rules = [((model.id, fit.rule), fit.condition) for model in models for fit in model.fit]
    found = Fits([], {rule: set() for rule, _condition in rules})
    if not rules:
        return found
    conditions = [condition for _rule, condition in rules]
    for start in range(0, len(refit), CONTACTS_AT_ONCE):
        part = refit[start : start + CONTACTS_AT_ONCE]
        loaded = load_states(session, workspace_id, part, conditions=conditions, now=now, zone=zone)
        live = sorted(loaded.states)
        evaluation = loaded.evaluation(now=now, zone=zone)
        for rule, condition in rules:
            found.holding[rule] |= evaluation.matching(condition, live)
        found.contacts += live
    return found


def move_scores(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """A merged contact's scores go; the survivors are scored again from their joined history.

    An engagement reset belongs to the person: the survivor keeps the later of the two, so
    what either did before it still gives no points."""
    models = live_models(session, workspace_id)
    if not models:
        return
    execute_many(
        session,
        "INSERT INTO score_resets (model_id, contact_id, at)"
        " SELECT model_id, ?, at FROM score_resets WHERE contact_id = ?"
        " ON CONFLICT (model_id, contact_id) DO UPDATE SET at = CASE"
        " WHEN excluded.at > score_resets.at THEN excluded.at ELSE score_resets.at END",
        [(merge.survivor, merge.merged) for merge in merges],
    )
    merged = sorted({merge.merged for merge in merges})
    for table in ("contact_scores", "contact_score_rules", "score_daily_awards", "score_resets"):
        execute_many(
            session,
            f"DELETE FROM {table} WHERE contact_id = ?",  # noqa: S608 (a fixed table name)
            [(contact,) for contact in merged],
        )
    zone = workspaces.workspace_zone(session, workspace_id)
    survivors = sorted({merge.survivor for merge in merges})
    for model in models:
        recompute_model(
            session,
            workspace_id,
            model,
            now=now,
            zone=zone,
            cause=ScoreCause.MERGE,
            contacts=survivors,
        )
