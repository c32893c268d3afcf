"""Scoring set-based: every contact of a model (or a few, after a merge) from their history.

One statement per rule, whatever the number of contacts: a fit rule inserts the points of the
contacts its condition matches (the SQL evaluator); an engagement rule ranks the contact's
matching events in time with window functions, applies `max_per_day` (on the workspace's
calendar) and then `max_total` to them in that order, and sums the awards and their decay
bases. The contacts' totals are then summed from the rules, and thresholds compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from sodate.conditions.sql import EVENTS, matching_contacts, property_filters
from sodate.db.base import MicrosecondTime, UTCDateTime, floor_seconds, micros_of_text
from sodate.db.bulk import driver_values, insert_rows
from sodate.scoring.decay import threshold_bound, weight_sql
from sodate.scoring.live import MODELS, EngagementPoints, LiveModel
from sodate.scoring.models import (
    ContactScore,
    ContactScoreRule,
    ScoreCause,
    ScoreCrossing,
    ScoreDailyAward,
    ScoreHistory,
    ScoreReset,
)

SCORES: sa.Table = ContactScore.__table__  # type: ignore[assignment]
RULES: sa.Table = ContactScoreRule.__table__  # type: ignore[assignment]
DAILY: sa.Table = ScoreDailyAward.__table__  # type: ignore[assignment]
HISTORY: sa.Table = ScoreHistory.__table__  # type: ignore[assignment]
CROSSINGS: sa.Table = ScoreCrossing.__table__  # type: ignore[assignment]
RESETS: sa.Table = ScoreReset.__table__  # type: ignore[assignment]
HISTORY_COLUMNS = ("workspace_id", "model_id", "contact_id", "at", "fit", "engagement", "cause")
CROSSING_COLUMNS = (
    "workspace_id",
    "model_id",
    "contact_id",
    "threshold",
    "value",
    "reached",
    "total",
    "cause",
    "at",
)
"""The columns the real-time step and the recomputation write, in their order."""

_SAMPLE_SECONDS = 6 * 3600


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
    scope = _Scope(session, model.id, contacts)
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
        _engagement(session, workspace_id, model, engagement, now=now, zone=zone, scope=scope)
    _sum_rules(session, workspace_id, model, scope, now=now, cause=cause)
    return sync_levels(session, workspace_id, model, now=now, cause=cause, contacts=contacts)


def has_resets(session: Session, model_id: int) -> bool:
    """Whether some contact's engagement in the model was reset (`score_resets`)."""
    found = session.execute(
        sa.select(RESETS.c.model_id).where(RESETS.c.model_id == model_id).limit(1)
    ).first()
    return found is not None


class _Scope:
    def __init__(self, session: Session, model_id: int, contacts: Sequence[int] | None) -> None:
        self.model_id = model_id
        self.contacts = contacts
        self.has_resets = has_resets(session, model_id)
        """Some contact's engagement was reset: events before its reset give no points."""

    def of(self, table: sa.Table) -> list[ColumnElement[bool]]:
        where = [table.c.model_id == self.model_id]
        if self.contacts is not None:
            where.append(table.c.contact_id.in_(self.contacts))
        return where


def _engagement(
    session: Session,
    workspace_id: str,
    model: LiveModel,
    rule: EngagementPoints,
    *,
    now: datetime,
    zone: ZoneInfo,
    scope: _Scope,
) -> None:
    postgresql = session.get_bind().dialect.name == "postgresql"
    magnitude, sign = abs(rule.points), (1.0 if rule.points > 0 else -1.0)
    where = [
        EVENTS.c.workspace_id == workspace_id,
        EVENTS.c.name == rule.event,
        *property_filters(
            rule.where,
            EVENTS.c.properties,
            dialect="postgresql" if postgresql else "sqlite",
            workspace_id=workspace_id,
            now=now,
            zone=zone,
        ),
    ]
    if scope.contacts is not None:
        where.append(EVENTS.c.contact_id.in_(scope.contacts))
    if scope.has_resets:
        where.append(
            ~sa.exists().where(
                RESETS.c.model_id == model.id,
                RESETS.c.contact_id == EVENTS.c.contact_id,
                RESETS.c.at >= EVENTS.c.timestamp
                if postgresql
                else micros_of_text(RESETS.c.at)
                >= sa.type_coerce(EVENTS.c.timestamp, sa.BigInteger()),
            )
        )
    # Decayed from the event's time or its receipt, whichever came first (`decays_from`).
    decays_from = sa.case(
        (EVENTS.c.received_at < EVENTS.c.timestamp, EVENTS.c.received_at),
        else_=EVENTS.c.timestamp,
    )
    columns: list[ColumnElement[object]] = [
        EVENTS.c.contact_id.label("contact_id"),
        EVENTS.c.timestamp.label("ts"),
        EVENTS.c.id.label("event_id"),
        decays_from.label("decays_from"),
    ]
    if rule.max_per_day is not None:
        day = _local_day(session, EVENTS.c.timestamp, zone, workspace_id, rule.event, postgresql)
        columns.append(day.label("day"))
    # The rule's events are found first (by the index on name and time), then ranked: left to
    # itself, SQLite would read every event in the order the window wants instead.
    matched = sa.select(*columns).where(*where).cte("matched").prefix_with("MATERIALIZED")
    ranked: list[ColumnElement[object]] = [*matched.c]
    if rule.max_per_day is not None:
        ranked.append(
            sa.func.row_number()
            .over(
                partition_by=(matched.c.contact_id, matched.c.day),
                order_by=(matched.c.ts, matched.c.event_id),
            )
            .label("n")
        )
    hits = sa.select(*ranked).subquery("hits")
    award: ColumnElement[float] = sa.literal(float(magnitude))
    if rule.max_per_day is not None:
        left = float(rule.max_per_day) - (hits.c.n - 1) * magnitude
        award = sa.case((left >= magnitude, magnitude), (left > 0, left), else_=0.0)
    daily = sa.select(hits, award.label("a1")).subquery("daily")
    award = daily.c.a1
    if rule.max_total is not None:
        before = sa.func.sum(daily.c.a1).over(
            partition_by=daily.c.contact_id,
            order_by=(daily.c.ts, daily.c.event_id),
            rows=(None, -1),
        )
        capped = sa.select(daily, sa.func.coalesce(before, 0.0).label("before")).subquery("capped")
        left = float(rule.max_total) - capped.c.before
        award = sa.case((left >= capped.c.a1, capped.c.a1), (left > 0, left), else_=0.0)
        awards = sa.select(capped, award.label("a")).subquery("awards")
    else:
        awards = sa.select(daily, award.label("a")).subquery("awards")
    weight: ColumnElement[float] = sa.literal(1.0)
    if model.half_life_days is not None:
        weight = weight_sql(awards.c.decays_from, model.epoch, model.half_life_days, postgresql)
    session.execute(
        sa.insert(RULES).from_select(
            ["model_id", "contact_id", "rule", "workspace_id", "points", "base"],
            sa.select(
                sa.literal(model.id),
                awards.c.contact_id,
                sa.literal(rule.rule),
                sa.literal(workspace_id),
                sa.func.sum(awards.c.a) * sign,
                sa.func.sum(awards.c.a * weight) * sign,
            )
            .group_by(awards.c.contact_id)
            .having(sa.func.sum(awards.c.a) > 0),
        )
    )
    if rule.max_per_day is not None:
        session.execute(
            sa.insert(DAILY).from_select(
                ["model_id", "contact_id", "rule", "day", "points"],
                sa.select(
                    sa.literal(model.id),
                    awards.c.contact_id,
                    sa.literal(rule.rule),
                    awards.c.day,
                    sa.func.sum(awards.c.a) * sign,
                )
                .group_by(awards.c.contact_id, awards.c.day)
                .having(sa.func.sum(awards.c.a) > 0),
            )
        )


def _local_day(
    session: Session,
    ts: ColumnElement[datetime],
    zone: ZoneInfo,
    workspace_id: str,
    event: str,
    postgresql: bool,
) -> ColumnElement[object]:
    """The date of `ts` on the workspace's calendar. SQLite knows no time zones, so its
    offsets over the span of the events are spelled out (one, where the zone keeps one)."""
    if postgresql:
        return sa.cast(sa.func.timezone(zone.key, ts), sa.Date)
    low, high = session.execute(
        sa.select(sa.func.min(EVENTS.c.timestamp), sa.func.max(EVENTS.c.timestamp)).where(
            EVENTS.c.workspace_id == workspace_id, EVENTS.c.name == event
        )
    ).one()
    spans = offset_spans(zone, low, high) if low is not None else [(None, 0)]

    def shifted(offset: int) -> ColumnElement[object]:
        return sa.func.date(floor_seconds(ts), "unixepoch", sa.literal(f"{offset:+d} seconds"))

    if len(spans) == 1:
        return shifted(spans[0][1])
    whens = [
        (ts < sa.literal(start, MicrosecondTime()), shifted(offset))
        for (_, offset), (start, _) in pairwise(spans)
    ]
    return sa.case(*whens, else_=shifted(spans[-1][1]))


def offset_spans(
    zone: ZoneInfo, low: datetime, high: datetime
) -> list[tuple[datetime | None, int]]:
    """The zone's UTC offsets (seconds) from `low` to `high`: (start, offset) in order, the
    first starting at None. Offsets are sampled every six hours and each change is found to
    the second (zones change offset at most a few times a year, on whole seconds)."""

    def offset(seconds: int) -> int:
        delta = datetime.fromtimestamp(seconds, UTC).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start, end = math.floor(low.timestamp()), math.ceil(high.timestamp())
    spans: list[tuple[datetime | None, int]] = [(None, offset(start))]
    at = start
    while at < end:
        following = min(at + _SAMPLE_SECONDS, end)
        if offset(following) != spans[-1][1]:
            early, late = at, following
            while late - early > 1:
                middle = (early + late) // 2
                if offset(middle) == spans[-1][1]:
                    early = middle
                else:
                    late = middle
            spans.append((datetime.fromtimestamp(late, UTC), offset(late)))
        at = following
    return spans


def _sum_rules(
    session: Session,
    workspace_id: str,
    model: LiveModel,
    scope: _Scope,
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
    scope = _Scope(session, model.id, contacts)
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
