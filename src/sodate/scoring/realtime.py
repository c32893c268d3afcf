"""Scores in real time: the scoring step of the event pipeline, and what a merge does to scores.

For each model, the batch's events (in time order) give engagement points within the rules'
caps, and the contacts whose profile changed (or that are new) have their fit rules evaluated
again in memory. Only the contacts touched are read and written, in a handful of statements
for the whole batch. A total that reaches or leaves a threshold is recorded as a crossing; if
decay had already carried it across one since it was last looked at, that crossing (cause
`time`) is recorded first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sodate.conditions.memory import ContactState, evaluate, properties_hold
from sodate.conditions.state import load_states
from sodate.contacts.resolution import PlannedMerge
from sodate.db.bulk import DriverValues, driver_values, execute_many, fetch_in, insert_rows
from sodate.events.pipeline import BatchEvent, EventBatch
from sodate.scoring.live import EngagementPoints, LiveModel, live_models
from sodate.scoring.models import ScoreCause
from sodate.scoring.recompute import recompute_model
from sodate.workspaces import service as workspaces


def update_scores(session: Session, batch: EventBatch) -> None:
    models = live_models(session, batch.workspace_id)
    if not models:
        return
    zone = workspaces.workspace_zone(session, batch.workspace_id)
    refit = sorted(batch.changed_profiles | batch.created_contacts)
    conditions = [rule.condition for model in models for rule in model.fit]
    states = (
        load_states(session, batch.workspace_id, refit, conditions=conditions, now=batch.now)
        if refit and conditions
        else {}
    )
    named = sorted(
        (event for event in batch.events if event.name is not None),
        key=lambda event: (event.timestamp, event.event_id),
    )
    for model in models:
        changed = _Scoring(session, batch.workspace_id, model, batch.now, zone).run(named, states)
        batch.changed_scores |= changed


@dataclass
class _Scoring:
    session: Session
    workspace_id: str
    model: LiveModel
    now: datetime
    zone: ZoneInfo
    rules: dict[tuple[int, str], tuple[float, float]] = field(default_factory=dict)
    """(contact, rule) → (points, base): what is stored, then what will be."""
    daily: dict[tuple[int, str, date], float] = field(default_factory=dict)

    def run(self, events: Sequence[BatchEvent], states: dict[int, ContactState]) -> set[int]:
        hits = self._hits(events)
        refit = set(states) if self.model.fit else set()
        touched = sorted({event.contact_id for event, _rule in hits} | refit)
        if not touched:
            return set()
        values = driver_values(self.session)
        days = [
            event.timestamp.astimezone(self.zone).date()
            for event, rule in hits
            if rule.max_per_day is not None
        ]
        scores = self._load(values, touched, days)
        stored_rules = dict(self.rules)
        stored_daily = dict(self.daily)
        causes: dict[int, ScoreCause] = {}
        for contact in refit:
            for fit in self.model.fit:
                holds = evaluate(fit.condition, states[contact], now=self.now, zone=self.zone)
                if holds != ((contact, fit.rule) in self.rules):
                    causes[contact] = ScoreCause.PROFILE
                    if holds:
                        self.rules[(contact, fit.rule)] = (float(fit.points), 0.0)
                    else:
                        del self.rules[(contact, fit.rule)]
        for event, rule in hits:
            if self._award(event, rule):
                causes[event.contact_id] = ScoreCause.EVENT
        self._write_rules(values, stored_rules, stored_daily)
        return self._write_scores(values, scores, causes)

    def _hits(self, events: Sequence[BatchEvent]) -> list[tuple[BatchEvent, EngagementPoints]]:
        by_name: dict[str, list[EngagementPoints]] = defaultdict(list)
        for rule in self.model.engagement:
            by_name[rule.event].append(rule)
        return [
            (event, rule)
            for event in events
            for rule in by_name.get(event.name or "", ())
            if properties_hold(rule.where, event.properties, now=self.now, zone=self.zone)
        ]

    def _award(self, event: BatchEvent, rule: EngagementPoints) -> bool:
        key = (event.contact_id, rule.rule)
        points, base = self.rules.get(key, (0.0, 0.0))
        award = float(abs(rule.points))
        day = event.timestamp.astimezone(self.zone).date()
        if rule.max_per_day is not None:
            given = abs(self.daily.get((event.contact_id, rule.rule, day), 0.0))
            award = min(award, max(0.0, rule.max_per_day - given))
        if rule.max_total is not None:
            award = min(award, max(0.0, rule.max_total - abs(points)))
        if award <= 0:
            return False
        signed = award if rule.points > 0 else -award
        self.rules[key] = (points + signed, base + signed * self.model.weight(event.timestamp))
        if rule.max_per_day is not None:
            daily_key = (event.contact_id, rule.rule, day)
            self.daily[daily_key] = self.daily.get(daily_key, 0.0) + signed
        return True

    def _load(
        self, values: DriverValues, touched: list[int], days: list[date]
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
        for contact, rule, points, base in fetch_in(
            self.session,
            "SELECT contact_id, rule, points, base FROM contact_score_rules"
            " WHERE model_id = ? AND contact_id IN",
            touched,
            (model_id,),
        ):
            self.rules[(contact, rule)] = (points, base)
        if days:
            for contact, rule, day, points in fetch_in(
                self.session,
                "SELECT contact_id, rule, day, points FROM score_daily_awards"
                " WHERE model_id = ? AND day >= ? AND day <= ? AND contact_id IN",
                touched,
                (model_id, _day_value(values, min(days)), _day_value(values, max(days))),
            ):
                self.daily[(contact, rule, _stored_day(day))] = points
        return scores

    def _write_rules(
        self,
        values: DriverValues,
        stored_rules: dict[tuple[int, str], tuple[float, float]],
        stored_daily: dict[tuple[int, str, date], float],
    ) -> None:
        model_id, workspace_id = self.model.id, self.workspace_id
        execute_many(
            self.session,
            "INSERT INTO contact_score_rules (model_id, contact_id, rule, workspace_id, points,"
            " base) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, contact_id, rule)"
            " DO UPDATE SET points = excluded.points, base = excluded.base",
            [
                (model_id, contact, rule, workspace_id, points, base)
                for (contact, rule), (points, base) in self.rules.items()
                if stored_rules.get((contact, rule)) != (points, base)
            ],
        )
        execute_many(
            self.session,
            "DELETE FROM contact_score_rules WHERE model_id = ? AND contact_id = ? AND rule = ?",
            [
                (model_id, contact, rule)
                for contact, rule in stored_rules
                if (contact, rule) not in self.rules
            ],
        )
        execute_many(
            self.session,
            "INSERT INTO score_daily_awards (model_id, contact_id, rule, day, points)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_id, contact_id, rule, day)"
            " DO UPDATE SET points = excluded.points",
            [
                (model_id, contact, rule, _day_value(values, day), points)
                for (contact, rule, day), points in self.daily.items()
                if stored_daily.get((contact, rule, day)) != points
            ],
        )

    def _write_scores(
        self,
        values: DriverValues,
        scores: dict[int, tuple[float, float, int]],
        causes: dict[int, ScoreCause],
    ) -> set[int]:
        model, now = self.model, self.now
        fit: dict[int, float] = defaultdict(float)
        base: dict[int, float] = defaultdict(float)
        for (contact, rule), (points, rule_base) in self.rules.items():
            if rule.startswith("fit."):
                fit[contact] += points
            else:
                base[contact] += rule_base
        stamp = values.time(now)
        factor = model.factor(now)
        rows, history, crossings = [], [], []
        for contact, cause in sorted(causes.items()):
            old_fit, old_base, level = scores.get(contact, (0.0, 0.0, 0))
            new_fit, new_base = fit[contact], base[contact]
            if (new_fit, new_base) == (old_fit, old_base):
                continue
            total = new_fit + new_base * factor
            before = model.level(old_fit + old_base * factor)
            after = model.level(total)
            for moved, moved_cause, old_total in (
                ((level, before), ScoreCause.TIME, old_fit + old_base * factor),
                ((before, after), cause, total),
            ):
                for value, name in model.crossed(*moved):
                    crossings.append(
                        (
                            self.workspace_id,
                            model.id,
                            contact,
                            name,
                            value,
                            values.truth(moved[1] > moved[0]),
                            old_total,
                            moved_cause.value,
                            stamp,
                        )
                    )
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
        execute_many(
            self.session,
            "INSERT INTO contact_scores (model_id, contact_id, workspace_id, fit, engagement_base,"
            " level, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, contact_id)"
            " DO UPDATE SET fit = excluded.fit, engagement_base = excluded.engagement_base,"
            " level = excluded.level, updated_at = excluded.updated_at",
            rows,
        )
        insert_rows(
            self.session,
            "score_history",
            ("workspace_id", "model_id", "contact_id", "at", "fit", "engagement", "cause"),
            history,
        )
        insert_rows(
            self.session,
            "score_crossings",
            (
                "workspace_id",
                "model_id",
                "contact_id",
                "threshold",
                "value",
                "reached",
                "total",
                "cause",
                "at",
            ),
            crossings,
        )
        return {row[1] for row in rows}


def _day_value(values: DriverValues, day: date) -> object:
    return day if values.postgresql else day.isoformat()


def _stored_day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def move_scores(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """A merged contact's scores go; the survivors are scored again from their joined history."""
    models = live_models(session, workspace_id)
    if not models:
        return
    merged = sorted({merge.merged for merge in merges})
    for table in ("contact_scores", "contact_score_rules", "score_daily_awards"):
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
