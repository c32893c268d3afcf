"""Scoring set-based: every contact of a model (or a few, after a merge) from their history.

One statement per rule, whatever the number of contacts: a fit rule inserts the points of the
contacts its condition matches (the SQL evaluator); an engagement rule ranks the contact's
matching events in time with window functions, applies `max_per_day` (on the workspace's
calendar) and then `max_total` to them in that order, and sums the awards and their decay
bases (`recompute_engagement`). The contacts' totals are then summed from the rules, and
thresholds compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from sodate.conditions.sql import matching_contacts
from sodate.db.base import UTCDateTime
from sodate.db.bulk import driver_values, insert_rows
from sodate.scoring.decay import threshold_bound
from sodate.scoring.live import MODELS, LiveModel
from sodate.scoring.models import ScoreCause
from sodate.scoring.recompute_engagement import score_engagement
from sodate.scoring.tables import (
    CROSSING_COLUMNS,
    CROSSINGS,
    DAILY,
    HISTORY_COLUMNS,
    RULES,
    SCORES,
    Scope,
)


def recompute_model(
    session: Session,
    workspace_id: str,
    model: LiveModel,
    *,
    now: datetime,
    zone: ZoneInfo,
    cause: ScoreCause,
    contacts: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Score the model's contacts (all, or `contacts`) from scratch; record history for those
    whose score changed and every threshold crossed; return (reached, fell)."""
    dialect = session.get_bind().dialect.name
    scope = Scope(session, model.id, contacts)
    for table in (RULES, DAILY):
        session.execute(sa.delete(table).where(*scope.of(table)))
    for rule in model.fit:
        matching = matching_contacts(
            rule.condition,
            dialect=dialect,
            workspace_id=workspace_id,
            now=now,
            zone=zone,
            among=contacts,
        ).subquery()
        select = sa.select(
            sa.literal(model.id),
            matching.c.id,
            sa.literal(rule.rule),
            sa.literal(workspace_id),
            sa.literal(float(rule.points)),
            sa.literal(0.0),
        )
        session.execute(
            sa.insert(RULES).from_select(
                ["model_id", "contact_id", "rule", "workspace_id", "points", "base"], select
            )
        )
    for engagement in model.engagement:
        score_engagement(session, workspace_id, model, engagement, now=now, zone=zone, scope=scope)
    _sum_rules(session, workspace_id, model, scope, now=now, cause=cause)
    return sync_levels(session, workspace_id, model, now=now, cause=cause, contacts=contacts)


def _sum_rules(
    session: Session,
    workspace_id: str,
    model: LiveModel,
    scope: Scope,
    *,
    now: datetime,
    cause: ScoreCause,
) -> None:
    """Each contact's fit and engagement base from its rules; history for those that changed."""
    fit_rule = RULES.c.rule.startswith("fit.")
    sums = (
        sa.select(
            sa.literal(model.id).label("model_id"),
            RULES.c.contact_id,
            sa.literal(workspace_id).label("workspace_id"),
            sa.func.sum(sa.case((fit_rule, RULES.c.points), else_=0.0)).label("fit"),
            sa.func.sum(RULES.c.base).label("engagement_base"),
            sa.literal(0).label("level"),
            sa.literal(now, UTCDateTime()).label("updated_at"),
        )
        .where(*scope.of(RULES))
        .group_by(RULES.c.contact_id)
    )
    postgresql = session.get_bind().dialect.name == "postgresql"
    insert = (pg.insert if postgresql else sqlite.insert)(SCORES).from_select(
        ["model_id", "contact_id", "workspace_id", "fit", "engagement_base", "level", "updated_at"],
        sums,
    )
    excluded = insert.excluded
    changed = session.execute(
        insert.on_conflict_do_update(
            index_elements=["model_id", "contact_id"],
            set_={
                "fit": excluded.fit,
                "engagement_base": excluded.engagement_base,
                "updated_at": excluded.updated_at,
            },
            where=sa.or_(
                SCORES.c.fit != excluded.fit,
                _differs(SCORES.c.engagement_base, excluded.engagement_base),
            ),
        ).returning(SCORES.c.contact_id, SCORES.c.fit, SCORES.c.engagement_base)
    ).all()
    scored = sa.select(RULES.c.contact_id).where(*scope.of(RULES))
    zeroed = (
        session.execute(
            sa.update(SCORES)
            .where(
                *scope.of(SCORES),
                SCORES.c.contact_id.not_in(scored),
                sa.or_(SCORES.c.fit != 0.0, SCORES.c.engagement_base != 0.0),
            )
            .values(fit=0.0, engagement_base=0.0, updated_at=now)
            .returning(SCORES.c.contact_id)
        )
        .scalars()
        .all()
    )
    values = driver_values(session)
    stamp, factor = values.time(now), model.factor(now)
    rows = [
        (workspace_id, model.id, contact, stamp, fit, base * factor, cause.value)
        for contact, fit, base in changed
    ]
    rows += [(workspace_id, model.id, contact, stamp, 0.0, 0.0, cause.value) for contact in zeroed]
    insert_rows(
        session,
        "score_history",
        HISTORY_COLUMNS,
        rows,
    )


def _differs(stored: ColumnElement[float], computed: ColumnElement[float]) -> ColumnElement[bool]:
    """Bases summed in another order differ in their last bits; that is not a change."""
    return sa.func.abs(stored - computed) > 1e-9 * (sa.func.abs(computed) + 1.0)


def sync_levels(
    session: Session,
    workspace_id: str,
    model: LiveModel,
    *,
    now: datetime,
    cause: ScoreCause,
    contacts: Sequence[int] | None = None,
    rising_only_above: bool = False,
    record: bool = True,
) -> tuple[int, int]:
    """Record every threshold the contacts' totals crossed since last looked at, and keep
    their levels; return (reached, fell).

    Time alone moves totals when engagement decays: down, or up toward zero where it is
    negative. `rising_only_above` limits the look to contacts at a threshold already (when
    the model has no negative points, nobody below can rise)."""
    if not model.thresholds:
        return 0, 0
    scope = Scope(session, model.id, contacts)
    factor = model.factor(now)
    total = SCORES.c.fit + SCORES.c.engagement_base * factor
    where = scope.of(SCORES)
    if rising_only_above:
        where.append(SCORES.c.level > 0)
    counts = [0, 0]
    passes = [
        (rank, value, name, True) for rank, (value, name) in enumerate(model.thresholds, start=1)
    ]
    passes += [(rank, value, name, False) for rank, value, name, _ in reversed(passes)]
    if not record:
        passes = []
    for rank, value, name, reached in passes:
        # As shown (`decay.threshold_bound`), as LiveModel.level compares.
        bound = threshold_bound(value)
        crossed = (
            sa.and_(SCORES.c.level < rank, total >= bound)
            if reached
            else sa.and_(SCORES.c.level >= rank, total < bound)
        )
        inserted = session.execute(
            sa.insert(CROSSINGS)
            .from_select(
                list(CROSSING_COLUMNS),
                sa.select(
                    SCORES.c.workspace_id,
                    SCORES.c.model_id,
                    SCORES.c.contact_id,
                    sa.literal(name),
                    sa.literal(value),
                    sa.literal(reached),
                    total,
                    sa.literal(cause.value),
                    sa.literal(now, UTCDateTime()),
                )
                .where(*where, crossed)
                .order_by(SCORES.c.contact_id),
            )
            .returning(CROSSINGS.c.id)
        ).all()
        counts[0 if reached else 1] += len(inserted)
    level = sum(
        (
            sa.case((total >= threshold_bound(value), 1), else_=0)
            for value, _name in model.thresholds
        ),
        start=sa.literal(0),
    )
    session.execute(sa.update(SCORES).where(*where, SCORES.c.level != level).values(level=level))
    return counts[0], counts[1]


def rebase(session: Session, model: LiveModel, *, now: datetime) -> None:
    """Move the model's epoch to `now`, rescaling every base so no engagement changes."""
    scale = model.factor(now)
    for table, column in ((SCORES, "engagement_base"), (RULES, "base")):
        session.execute(
            sa.update(table)
            .where(table.c.model_id == model.id)
            .values({column: table.c[column] * scale})
        )
    session.execute(sa.update(MODELS).where(MODELS.c.id == model.id).values(epoch=now))
