"""Moving contacts along the stages, set-based: the rules, the MQL threshold, inactivity.

Each rule is one SELECT of the contacts it moves (with their current stage), and the moves are
written as two batched statements: the change rows and the new stages. Rules only move a
contact forward along the ordered stages, and never move a dormant or churned contact: its
activity first brings it back (`reactivate`), then the rules apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.schemas import Condition
from sodate.conditions.sql import COMPANIES, contact_condition
from sodate.conditions.state import load_states
from sodate.contacts.models import Contact
from sodate.db.bulk import driver_values, execute_many, insert_rows
from sodate.db.plans import workspace_check
from sodate.lifecycle.models import (
    INACTIVE,
    NURTURING,
    PROGRESSION,
    ChangeSource,
    ContactStage,
    LifecycleChange,
    LifecycleRules,
    Stage,
)
from sodate.lifecycle.schemas import InactivityRule, LifecycleRulesIn, MqlRule
from sodate.scoring import service as scoring

STAGES: sa.Table = ContactStage.__table__  # type: ignore[assignment]
CHANGES: sa.Table = LifecycleChange.__table__  # type: ignore[assignment]
CONTACTS: sa.Table = Contact.__table__  # type: ignore[assignment]

_CHUNK = 500


@dataclass(frozen=True)
class Placement:
    """Where a contact stands: its stage, and for dormant or churned the stage it left."""

    stage: Stage
    resume_stage: Stage | None = None
    cycle_started_at: datetime | None = None

    @property
    def active_stage(self) -> Stage:
        """The ordered stage it holds, or held before it went inactive."""
        return self.resume_stage if self.resume_stage is not None else self.stage


@dataclass(frozen=True)
class Move:
    contact_id: int
    was: Placement | None
    to: Placement


@dataclass(frozen=True)
class Actor:
    """Who moved the contacts: a rule (by name), a user or an API key."""

    source: ChangeSource
    rule: str | None = None
    user_id: int | None = None
    api_key_id: int | None = None
    reason: str | None = None


def saved_rules(session: Session, workspace_id: str) -> LifecycleRulesIn | None:
    definition = session.scalar(
        sa.select(LifecycleRules.definition).where(LifecycleRules.workspace_id == workspace_id)
    )
    return None if definition is None else LifecycleRulesIn.model_validate(definition)


def rank(stage: Stage) -> int:
    return PROGRESSION.index(stage)


def placements(
    session: Session, workspace_id: str, contact_ids: Iterable[int]
) -> dict[int, Placement]:
    ids = sorted(set(contact_ids))
    found: dict[int, Placement] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            sa.select(
                STAGES.c.contact_id,
                STAGES.c.stage,
                STAGES.c.resume_stage,
                STAGES.c.cycle_started_at,
            ).where(
                workspace_check(STAGES.c.workspace_id, workspace_id),
                STAGES.c.contact_id.in_(ids[start : start + _CHUNK]),
            )
        )
        for contact_id, stage, resume, cycle in rows:
            found[contact_id] = _placement(stage, resume, cycle)
    return found


def _placement(stage: str, resume: str | None, cycle: datetime | None) -> Placement:
    return Placement(Stage(stage), Stage(resume) if resume else None, cycle)


def moved_to(was: Placement | None, stage: Stage, *, now: datetime) -> Placement:
    """The placement after moving to `stage` by any means (a rule, a person, inactivity).

    Going inactive keeps the stage left; going back below MQL from MQL or beyond starts a new
    cycle (recycling), so an old threshold crossing cannot lift the contact again."""
    cycle = was.cycle_started_at if was else None
    if stage in INACTIVE:
        resume = was.active_stage if was else None
        return Placement(stage, resume if resume in PROGRESSION else None, cycle)
    if was and rank(was.active_stage) >= rank(Stage.MQL) > rank(stage):
        cycle = now
    return Placement(stage, None, cycle)


def apply_moves(
    session: Session, workspace_id: str, moves: Sequence[Move], *, actor: Actor, now: datetime
) -> list[int]:
    """Record the moves and the new stages, in a batched statement each (the inserts a COPY on
    PostgreSQL); return who moved."""
    moves = [move for move in moves if move.was != move.to]
    if not moves:
        return []
    values = driver_values(session)
    stamp = values.time(now)
    insert_rows(
        session,
        "lifecycle_changes",
        (
            "workspace_id",
            "contact_id",
            "from_stage",
            "to_stage",
            "source",
            "rule",
            "user_id",
            "api_key_id",
            "reason",
            "at",
        ),
        [
            (
                workspace_id,
                move.contact_id,
                move.was.stage.value if move.was else None,
                move.to.stage.value,
                actor.source.value,
                actor.rule,
                actor.user_id,
                actor.api_key_id,
                actor.reason,
                stamp,
            )
            for move in moves
        ],
    )

    def row(move: Move) -> tuple[Any, ...]:
        cycle = move.to.cycle_started_at
        return (
            move.to.stage.value,
            stamp,
            move.to.resume_stage.value if move.to.resume_stage else None,
            values.time(cycle) if cycle else None,
            move.contact_id,
        )

    execute_many(
        session,
        "UPDATE contact_stages SET stage = ?, since = ?, resume_stage = ?, cycle_started_at = ?"
        " WHERE contact_id = ?",
        [row(move) for move in moves if move.was is not None],
    )
    insert_rows(
        session,
        "contact_stages",
        ("stage", "since", "resume_stage", "cycle_started_at", "contact_id", "workspace_id"),
        [(*row(move), workspace_id) for move in moves if move.was is None],
    )
    return [move.contact_id for move in moves]


def promote_by_rules(
    session: Session,
    workspace_id: str,
    rules: Sequence[tuple[Stage, Condition]],
    *,
    now: datetime,
    zone: ZoneInfo,
    candidates: dict[Stage, set[int]] | None = None,
) -> list[int]:
    """Move the contacts each rule holds for, furthest stage first; `candidates`: only those
    (per stage) rather than the whole workspace.

    Over the whole workspace each rule is one SQL query. For candidates, the rules are checked
    by one in-memory evaluation of their state: SQL restricted to a few contacts would still
    read every event of the workspace that a rule counts."""
    holding = (
        None
        if candidates is None
        else _holding(session, workspace_id, rules, candidates, now=now, zone=zone)
    )
    moved: list[int] = []
    dialect = session.get_bind().dialect.name
    for stage, condition in rules:
        behind = [s.value for s in PROGRESSION[: rank(stage)]]
        where = (
            contact_condition(
                condition, dialect=dialect, workspace_id=workspace_id, now=now, zone=zone
            )
            if holding is None
            else sa.true()
        )
        query = (
            sa.select(
                CONTACTS.c.id, STAGES.c.stage, STAGES.c.resume_stage, STAGES.c.cycle_started_at
            )
            .select_from(CONTACTS.outerjoin(COMPANIES, COMPANIES.c.id == CONTACTS.c.company_id))
            .outerjoin(STAGES, STAGES.c.contact_id == CONTACTS.c.id)
            .where(
                CONTACTS.c.workspace_id == workspace_id
                if holding is None
                else workspace_check(CONTACTS.c.workspace_id, workspace_id),
                CONTACTS.c.merged_into_id.is_(None),
                sa.or_(STAGES.c.stage.is_(None), STAGES.c.stage.in_(behind)),
                where,
            )
        )
        rows = _rows(session, query, None if holding is None else holding[stage])
        moved += apply_moves(
            session,
            workspace_id,
            [_move(row, stage, now) for row in rows],
            actor=Actor(ChangeSource.RULE, rule=stage.value),
            now=now,
        )
    return moved


def _holding(
    session: Session,
    workspace_id: str,
    rules: Sequence[tuple[Stage, Condition]],
    candidates: dict[Stage, set[int]],
    *,
    now: datetime,
    zone: ZoneInfo,
) -> dict[Stage, set[int]]:
    """For each rule, the candidates it holds for, by one evaluation of their state."""
    everyone = sorted(set().union(*candidates.values()))
    conditions = [condition for _stage, condition in rules]
    loaded = load_states(
        session,
        workspace_id,
        everyone,
        conditions=conditions,
        now=now,
        zone=zone,
        asked=[candidates.get(stage, set()) for stage, _condition in rules],
    )
    evaluation = loaded.evaluation(now=now, zone=zone)
    return {
        stage: evaluation.matching(condition, candidates.get(stage, set()) & loaded.states.keys())
        for stage, condition in rules
    }


def promote_by_threshold(
    session: Session,
    workspace_id: str,
    rule: MqlRule,
    *,
    now: datetime,
    candidates: set[int] | None = None,
) -> list[int]:
    """Make MQL the nurtured contacts whose latest crossing of the threshold reached it, in
    this cycle (after they were last recycled)."""
    model_id = scoring.model_id(session, workspace_id, rule.model)
    if model_id is None:
        return []
    crossings = scoring.latest_crossings(model_id, rule.threshold).subquery()
    query = (
        sa.select(
            crossings.c.contact_id,
            STAGES.c.stage,
            STAGES.c.resume_stage,
            STAGES.c.cycle_started_at,
        )
        .select_from(crossings)
        .join(CONTACTS, CONTACTS.c.id == crossings.c.contact_id)
        .outerjoin(STAGES, STAGES.c.contact_id == crossings.c.contact_id)
        .where(
            crossings.c.reached,
            CONTACTS.c.merged_into_id.is_(None),
            sa.or_(STAGES.c.stage.is_(None), STAGES.c.stage.in_([s.value for s in NURTURING])),
            sa.or_(STAGES.c.cycle_started_at.is_(None), STAGES.c.cycle_started_at < crossings.c.at),
        )
    )
    rows = _rows(session, query, candidates, column=crossings.c.contact_id)
    return apply_moves(
        session,
        workspace_id,
        [_move(row, Stage.MQL, now) for row in rows],
        actor=Actor(ChangeSource.RULE, rule=Stage.MQL.value),
        now=now,
    )


def retire(
    session: Session, workspace_id: str, rule: InactivityRule, stage: Stage, *, now: datetime
) -> list[int]:
    """Move to `stage` (dormant or churned) the contacts inactive for the rule's days."""
    active = sa.func.coalesce(STAGES.c.resume_stage, STAGES.c.stage)
    query = (
        sa.select(
            STAGES.c.contact_id, STAGES.c.stage, STAGES.c.resume_stage, STAGES.c.cycle_started_at
        )
        .join(CONTACTS, CONTACTS.c.id == STAGES.c.contact_id)
        .where(
            STAGES.c.workspace_id == workspace_id,
            STAGES.c.stage.not_in([stage.value, Stage.CHURNED.value]),
            active.in_([s.value for s in rule.from_]),
            sa.func.coalesce(CONTACTS.c.last_seen_at, CONTACTS.c.created_at)
            < now - timedelta(days=rule.after_days),
        )
    )
    rows = _rows(session, query, None)
    return apply_moves(
        session,
        workspace_id,
        [_move(row, stage, now) for row in rows],
        actor=Actor(ChangeSource.RULE, rule=stage.value),
        now=now,
    )


def reactivate(
    session: Session, workspace_id: str, contact_ids: set[int], *, now: datetime
) -> list[int]:
    """Bring dormant and churned contacts that were active again back to the stage they left."""
    moves = [
        Move(contact, was, Placement(was.active_stage, None, was.cycle_started_at))
        for contact, was in placements(session, workspace_id, contact_ids).items()
        if was.stage in INACTIVE and was.resume_stage is not None
    ]
    return apply_moves(
        session, workspace_id, moves, actor=Actor(ChangeSource.RULE, rule="reactivated"), now=now
    )


def _rows(
    session: Session, query: sa.Select[Any], candidates: set[int] | None, column: Any = None
) -> list[Any]:
    if candidates is None:
        return list(session.execute(query))
    column = CONTACTS.c.id if column is None else column
    ids = sorted(candidates)
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        rows += session.execute(query.where(column.in_(ids[start : start + _CHUNK]))).all()
    return rows


def _move(row: Any, stage: Stage, now: datetime) -> Move:
    contact_id, current, resume, cycle = row
    was = _placement(current, resume, cycle) if current is not None else None
    return Move(contact_id, was, moved_to(was, stage, now=now))
