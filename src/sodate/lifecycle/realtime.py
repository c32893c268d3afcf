"""Stages in real time: the lifecycle step of the event pipeline, and merges.

After scores and segments, each contact the batch touched is checked: activity brings dormant
and churned contacts back to the stage they left; then each rule is checked for the contacts
whose change it reads (as segments are), and the MQL threshold for those whose score changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.reads import reads
from sodate.contacts.resolution import PlannedMerge
from sodate.events.pipeline import EventBatch
from sodate.lifecycle import progress
from sodate.lifecycle.models import INACTIVE, ChangeSource, Stage
from sodate.lifecycle.progress import STAGES, Actor, Move, Placement
from sodate.workspaces.service import workspace_zone


def update_stages(session: Session, batch: EventBatch) -> None:
    rules = progress.saved_rules(session, batch.workspace_id)
    if rules is None:
        return
    changes = batch.changes()
    moved = progress.reactivate(session, batch.workspace_id, changes.seen, now=batch.now)
    # Contacts brought back from dormant or churned are checked by every rule.
    always = changes.always | set(moved)
    changes = replace(changes, always=always)
    touched = always | batch.contact_ids | batch.changed_profiles | batch.changed_scores
    candidates: dict[Stage, set[int]] = {}
    for stage, condition in rules.ordered_rules():
        found = reads(condition)
        contacts = changes.candidates(found)
        if found.segments:  # the segments step may have moved any contact of the batch
            contacts |= touched
        candidates[stage] = contacts
    zone = workspace_zone(session, batch.workspace_id)
    moved += progress.promote_by_rules(
        session,
        batch.workspace_id,
        rules.ordered_rules(),
        now=batch.now,
        zone=zone,
        candidates=candidates,
    )
    if rules.mql is not None:
        moved += progress.promote_by_threshold(
            session,
            batch.workspace_id,
            rules.mql,
            now=batch.now,
            candidates=batch.changed_scores | always,
        )
    batch.changed_stages |= set(moved)


def move_stages(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """The survivor keeps the further of the two stages (an active one before an inactive);
    the merged contact's stage goes with it."""
    for merge in merges:
        held = progress.placements(session, workspace_id, (merge.survivor, merge.merged))
        kept, merged = held.get(merge.survivor), held.pop(merge.merged, None)
        if merged is None:
            continue
        session.execute(sa.delete(STAGES).where(STAGES.c.contact_id == merge.merged))
        if kept is None or _standing(merged) > _standing(kept):
            progress.apply_moves(
                session,
                workspace_id,
                [Move(merge.survivor, kept, merged)],
                actor=Actor(ChangeSource.RULE, rule="merge"),
                now=now,
            )


def _standing(placement: Placement) -> tuple[bool, int]:
    return placement.stage not in INACTIVE, progress.rank(placement.active_stage)
