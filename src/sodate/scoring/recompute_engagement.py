"""An engagement rule scored set-based from history, for the recomputation (`recompute`).

One `INSERT … SELECT` per rule: window functions rank the contact's matching events in time,
apply `max_per_day` (on the workspace's calendar, `_local_day`) and then `max_total` in that
order, and sum the awards and their decay bases (and, for daily caps, each day's awards).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from sodate.conditions.sql import EVENTS, property_filters
from sodate.db.base import MicrosecondTime, floor_seconds, micros_of_text
from sodate.scoring.decay import weight_sql
from sodate.scoring.live import EngagementPoints, LiveModel
from sodate.scoring.tables import DAILY, RESETS, RULES, Scope

_SAMPLE_SECONDS = 6 * 3600


def score_engagement(
    session: Session,
    workspace_id: str,
    model: LiveModel,
    rule: EngagementPoints,
    *,
    now: datetime,
    zone: ZoneInfo,
    scope: Scope,
) -> None:
    """Insert the rule's points and decay bases per contact of the scope (and, under
    `max_per_day`, its points per day)."""
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
