"""One scoring model over one batch of the event pipeline (`BatchScoring`), by increments.

The batch's events (in time order) give engagement points within the rules' caps, and the fit
rules evaluated again (`Fits`) change the fit of the contacts whose profile changed. Only what
a cap or a fit rule needs is read; rule rows, daily awards, totals, history and crossings are
then written in a handful of statements for the whole batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sodate.conditions.comparisons import property_matcher
from sodate.db.bulk import (
    DriverValues,
    driver_values,
    execute_many,
    fetch_in,
    insert_rows,
    upsert_many,
)
from sodate.events.pipeline import BatchEvent
from sodate.scoring.live import EngagementPoints, LiveModel
from sodate.scoring.models import ScoreCause
from sodate.scoring.tables import CROSSING_COLUMNS, HISTORY_COLUMNS, has_resets


@dataclass
class Fits:
    """The fit rules evaluated again for the contacts whose profile changed (or that are new)."""

    contacts: list[int]
    """Those of them that are live."""
    holding: dict[tuple[int, str], set[int]]
    """By model id and fit rule, the contacts the rule holds for."""


@dataclass
class BatchScoring:
    """One model over one batch. Rule rows and daily awards change by increments (an upsert
    adds to what is stored), so only what a cap or a fit rule needs to know is read first."""

    session: Session
    workspace_id: str
    model: LiveModel
    now: datetime
    zone: ZoneInfo
    capped: dict[tuple[int, str], float] = field(default_factory=dict)
    """(contact, rule) → points given so far, for rules with `max_total`."""
    daily: dict[tuple[int, str, date], float] = field(default_factory=dict)
    """(contact, rule, day) → points given that day, for rules with `max_per_day`."""
    fits: set[tuple[int, str]] = field(default_factory=set)
    """(contact, fit rule) pairs that hold, for the contacts whose fit is evaluated again."""
    added: dict[tuple[int, str], tuple[float, float]] = field(default_factory=dict)
    """(contact, engagement rule) → (points, base) this batch adds."""
    added_daily: dict[tuple[int, str, date], float] = field(default_factory=dict)
    days: dict[datetime, date] = field(default_factory=dict)
    """An event's time → its date in the workspace's zone (`_day`)."""

    def run(self, events: Sequence[BatchEvent], fits: Fits) -> set[int]:
        hits = self._after_resets(self._hits(events))
        refit = fits.contacts if self.model.fit else []
        touched = sorted({event.contact_id for event, _rule in hits} | set(refit))
        if not touched:
            return set()
        values = driver_values(self.session)
        scores = self._load(values, touched, refit, hits)
        fit_delta: dict[int, float] = defaultdict(float)
        base_delta: dict[int, float] = defaultdict(float)
        causes: dict[int, ScoreCause] = {}
        gained: list[tuple[int, str, float]] = []
        lost: list[tuple[int, str]] = []
        holding = {fit.rule: fits.holding[self.model.id, fit.rule] for fit in self.model.fit}
        for contact in refit:
            for fit in self.model.fit:
                holds = contact in holding[fit.rule]
                if holds != ((contact, fit.rule) in self.fits):
                    causes[contact] = ScoreCause.PROFILE
                    fit_delta[contact] += fit.points if holds else -fit.points
                    if holds:
                        gained.append((contact, fit.rule, float(fit.points)))
                    else:
                        lost.append((contact, fit.rule))
        for event, rule in hits:
            award = self._award(event, rule)
            if award:
                causes[event.contact_id] = ScoreCause.EVENT
                base_delta[event.contact_id] += award
        self._write_rules(values, gained, lost)
        return self._write_scores(values, scores, causes, fit_delta, base_delta)

    def _hits(self, events: Sequence[BatchEvent]) -> list[tuple[BatchEvent, EngagementPoints]]:
        by_name: dict[str, list[EngagementPoints]] = defaultdict(list)
        for rule in self.model.engagement:
            by_name[rule.event].append(rule)
        holds = property_matcher(now=self.now, zone=self.zone)
        return [
            (event, rule)
            for event in events
            for rule in by_name.get(event.name or "", ())
            if not rule.where or holds(rule.where, event.properties)
        ]

    def _after_resets(
        self, hits: list[tuple[BatchEvent, EngagementPoints]]
    ) -> list[tuple[BatchEvent, EngagementPoints]]:
        """The hits whose events came after their contact's engagement reset in the model, if
        it had one: events up to a reset give no points, as in every recomputation (an event
        may arrive late, from an app that was offline)."""
        if not hits or not has_resets(self.session, self.model.id):
            return hits
        stored_time = DriverValues.stored_time
        resets = {
            contact: stored_time(at)
            for contact, at in fetch_in(
                self.session,
                "SELECT contact_id, at FROM score_resets WHERE model_id = ? AND contact_id IN",
                sorted({event.contact_id for event, _rule in hits}),
                (self.model.id,),
            )
        }
        return [
            (event, rule)
            for event, rule in hits
            if (at := resets.get(event.contact_id)) is None or event.timestamp > at
        ]

    def _award(self, event: BatchEvent, rule: EngagementPoints) -> float:
        """The base this event adds through `rule` (0.0 when a cap leaves nothing to give)."""
        contact = event.contact_id
        award = float(abs(rule.points))
        daily: tuple[int, str, date] | None = None
        if rule.max_per_day is not None:
            daily = (contact, rule.rule, self._day(event))
            given = abs(self.daily.get(daily, 0.0))
            award = min(award, max(0.0, rule.max_per_day - given))
        if rule.max_total is not None:
            award = min(
                award, max(0.0, rule.max_total - abs(self.capped.get((contact, rule.rule), 0.0)))
            )
        if award <= 0:
            return 0.0
        signed = award if rule.points > 0 else -award
        base = signed * self.model.weight(decays_from(event))
        points, so_far = self.added.get((contact, rule.rule), (0.0, 0.0))
        self.added[(contact, rule.rule)] = (points + signed, so_far + base)
        if rule.max_total is not None:
            self.capped[(contact, rule.rule)] = self.capped.get((contact, rule.rule), 0.0) + signed
        if daily is not None:
            self.daily[daily] = self.daily.get(daily, 0.0) + signed
            self.added_daily[daily] = self.added_daily.get(daily, 0.0) + signed
        return base

    def _day(self, event: BatchEvent) -> date:
        """The event's date in the workspace's zone, worked out once per event: the daily caps
        read it when loading and when awarding."""
        day = self.days.get(event.timestamp)
        if day is None:
            day = self.days[event.timestamp] = event.timestamp.astimezone(self.zone).date()
        return day

    def _load(
        self,
        values: DriverValues,
        touched: list[int],
        refit: list[int],
        hits: Sequence[tuple[BatchEvent, EngagementPoints]],
    ) -> dict[int, tuple[float, float, int]]:
        model_id = self.model.id
        scores = {
            contact: (fit, base, level)
            for contact, fit, base, level in fetch_in(
                self.session,
                "SELECT contact_id, fit, engagement_base, level FROM contact_scores"
                " WHERE model_id = ? AND contact_id IN",
                touched,
                (model_id,),
            )
        }
        if refit:
            for contact, rule in fetch_in(
                self.session,
                "SELECT contact_id, rule FROM contact_score_rules"
                " WHERE model_id = ? AND rule LIKE ? AND contact_id IN",
                refit,
                (model_id, "fit.%"),
            ):
                self.fits.add((contact, rule))
        capped = sorted({e.contact_id for e, rule in hits if rule.max_total is not None})
        if capped:
            rules = sorted({rule.rule for rule in self.model.engagement if rule.max_total})
            marks = ", ".join("?" * len(rules))
            for contact, rule, points in fetch_in(
                self.session,
                "SELECT contact_id, rule, points FROM contact_score_rules"  # noqa: S608 (marks)
                f" WHERE model_id = ? AND rule IN ({marks}) AND contact_id IN",
                capped,
                (model_id, *rules),
            ):
                self.capped[(contact, rule)] = points
        days = [self._day(event) for event, rule in hits if rule.max_per_day is not None]
        if days:
            daily = sorted({e.contact_id for e, rule in hits if rule.max_per_day is not None})
            for contact, rule, day, points in fetch_in(
                self.session,
                "SELECT contact_id, rule, day, points FROM score_daily_awards"
                " WHERE model_id = ? AND day >= ? AND day <= ? AND contact_id IN",
                daily,
                (model_id, _day_value(values, min(days)), _day_value(values, max(days))),
            ):
                self.daily[(contact, rule, _stored_day(day))] = points
        return scores

    def _write_rules(
        self,
        values: DriverValues,
        gained: list[tuple[int, str, float]],
        lost: list[tuple[int, str]],
    ) -> None:
        model_id, workspace_id = self.model.id, self.workspace_id
        upsert_many(
            self.session,
            "INSERT INTO contact_score_rules (model_id, contact_id, rule, workspace_id, points,"
            " base) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, contact_id, rule)"
            " DO UPDATE SET points = contact_score_rules.points + excluded.points,"
            " base = contact_score_rules.base + excluded.base",
            [
                (model_id, contact, rule, workspace_id, points, base)
                for (contact, rule), (points, base) in self.added.items()
            ]
            + [
                (model_id, contact, rule, workspace_id, points, 0.0)
                for contact, rule, points in gained
            ],
            types=("bigint", "bigint", "text", "text", "float8", "float8"),
        )
        execute_many(
            self.session,
            "DELETE FROM contact_score_rules WHERE model_id = ? AND contact_id = ? AND rule = ?",
            [(model_id, contact, rule) for contact, rule in lost],
        )
        upsert_many(
            self.session,
            "INSERT INTO score_daily_awards (model_id, contact_id, rule, day, points)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_id, contact_id, rule, day)"
            " DO UPDATE SET points = score_daily_awards.points + excluded.points",
            [
                (model_id, contact, rule, _day_value(values, day), points)
                for (contact, rule, day), points in self.added_daily.items()
            ],
            types=("bigint", "bigint", "text", "date", "float8"),
        )

    def _write_scores(
        self,
        values: DriverValues,
        scores: dict[int, tuple[float, float, int]],
        causes: dict[int, ScoreCause],
        fit_delta: dict[int, float],
        base_delta: dict[int, float],
    ) -> set[int]:
        model, now = self.model, self.now
        stamp = values.time(now)
        factor = model.factor(now)
        rows, history, crossings = [], [], []
        for contact, cause in sorted(causes.items()):
            old_fit, old_base, level = scores.get(contact, (0.0, 0.0, 0))
            new_fit, new_base = old_fit + fit_delta[contact], old_base + base_delta[contact]
            if (new_fit, new_base) == (old_fit, old_base):
                continue
            old_total, total = old_fit + old_base * factor, new_fit + new_base * factor
            before, after = model.level(old_total), model.level(total)
            for (start, end), moved_cause, at_total in (
                ((level, before), ScoreCause.TIME, old_total),
                ((before, after), cause, total),
            ):
                crossings += [
                    (
                        self.workspace_id,
                        model.id,
                        contact,
                        name,
                        value,
                        values.truth(end > start),
                        at_total,
                        moved_cause.value,
                        stamp,
                    )
                    for value, name in model.crossed(start, end)
                ]
            rows.append((model.id, contact, self.workspace_id, new_fit, new_base, after, stamp))
            history.append(
                (
                    self.workspace_id,
                    model.id,
                    contact,
                    stamp,
                    new_fit,
                    new_base * factor,
                    cause.value,
                )
            )
        upsert_many(
            self.session,
            "INSERT INTO contact_scores (model_id, contact_id, workspace_id, fit, engagement_base,"
            " level, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, contact_id)"
            " DO UPDATE SET fit = excluded.fit, engagement_base = excluded.engagement_base,"
            " level = excluded.level, updated_at = excluded.updated_at",
            rows,
            types=("bigint", "bigint", "text", "float8", "float8", "integer", "timestamptz"),
        )
        insert_rows(
            self.session,
            "score_history",
            HISTORY_COLUMNS,
            history,
        )
        insert_rows(
            self.session,
            "score_crossings",
            CROSSING_COLUMNS,
            crossings,
        )
        return {row[1] for row in rows}


def decays_from(event: BatchEvent) -> datetime:
    """When an award starts to decay: the event's time, or its receipt if that came first.
    A device's clock ahead (up to a day is accepted) would otherwise make an award worth
    more than its points until its time came; the recomputation decays from the same."""
    return min(event.timestamp, event.received_at)


def _day_value(values: DriverValues, day: date) -> object:
    return day if values.postgresql else day.isoformat()


def _stored_day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
