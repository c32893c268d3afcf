"""The SQL evaluator: a condition compiled to one parametrized SQLAlchemy Core expression.

Set-based work (recomputing a segment, counting a preview) asks which contacts of a workspace
satisfy a condition; `matching_contacts` answers with one SELECT, on SQLite and PostgreSQL.
Values from the condition are always bound parameters, never SQL text. The rules are those
of `sodate.conditions.memory`; every leaf is a definite true or false (never NULL), so `not`
and the negative operators hold exactly when their positive form does not. Values are
compared with operands by `sodate.conditions.sql_comparisons`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from sodate.conditions import terms
from sodate.conditions.kept import TrackedFilter, answering
from sodate.conditions.models import EventFilterLatestTimes
from sodate.conditions.reads import reads_zone
from sodate.conditions.schemas import (
    AllCondition,
    AnyCondition,
    AttrCondition,
    Condition,
    ConsentCondition,
    EventCondition,
    EventSpec,
    LifecycleCondition,
    NotCondition,
    Operator,
    PropFilter,
    ScoreCondition,
    SegmentCondition,
)
from sodate.conditions.sql_comparisons import ComparisonCompiler, Zone, zone_of
from sodate.conditions.sql_values import Boolean, TextColumn, Value, definite, json_value
from sodate.conditions.terms import Source, ValueKind
from sodate.consents.models import ContactConsent
from sodate.contacts.models import Company, Contact
from sodate.db.plans import workspace_check
from sodate.events.models import LATEST_KEPT, Event, EventLatestTimes, EventName
from sodate.lifecycle.models import ContactStage
from sodate.scoring.decay import decay_factor_sql, shown_bound, shown_range
from sodate.scoring.models import ContactScore, ScoringModel
from sodate.segments.models import Segment, SegmentMember

CONTACTS: sa.Table = Contact.__table__  # type: ignore[assignment]
COMPANIES: sa.Table = Company.__table__  # type: ignore[assignment]
EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
LATEST: sa.Table = EventLatestTimes.__table__  # type: ignore[assignment]
FILTERED: sa.Table = EventFilterLatestTimes.__table__  # type: ignore[assignment]
NAMES: sa.Table = EventName.__table__  # type: ignore[assignment]
SEGMENTS: sa.Table = Segment.__table__  # type: ignore[assignment]
MEMBERS: sa.Table = SegmentMember.__table__  # type: ignore[assignment]
SCORING_MODELS: sa.Table = ScoringModel.__table__  # type: ignore[assignment]
CONTACT_SCORES: sa.Table = ContactScore.__table__  # type: ignore[assignment]
CONTACT_STAGES: sa.Table = ContactStage.__table__  # type: ignore[assignment]
CONTACT_CONSENTS: sa.Table = ContactConsent.__table__  # type: ignore[assignment]


def matching_contacts(
    condition: Condition,
    *,
    dialect: str,
    workspace_id: str,
    now: datetime,
    zone: ZoneInfo,
    among: Sequence[int] | None = None,
    kept: Mapping[str, TrackedFilter] | None = None,
) -> sa.Select[int]:
    """SELECT the ids of the workspace's live (not merged) contacts that satisfy `condition`;
    `among`: only of these contacts. `kept`: the workspace's kept event filters
    (`sodate.conditions.kept.tracked_filters`), whose rows answer the counts they can."""
    where = contact_condition(
        condition, dialect=dialect, workspace_id=workspace_id, now=now, zone=zone, kept=kept
    )
    workspace = CONTACTS.c.workspace_id
    query = (
        sa.select(CONTACTS.c.id)
        .select_from(CONTACTS.outerjoin(COMPANIES, COMPANIES.c.id == CONTACTS.c.company_id))
        .where(CONTACTS.c.merged_into_id.is_(None), where)
    )
    if among is None:
        return query.where(workspace == workspace_id)
    return query.where(workspace_check(workspace, workspace_id), CONTACTS.c.id.in_(among))


def contact_condition(
    condition: Condition,
    *,
    dialect: str,
    workspace_id: str,
    now: datetime,
    zone: ZoneInfo,
    kept: Mapping[str, TrackedFilter] | None = None,
) -> Boolean:
    """The condition over a row of `contacts` outer-joined to its row of `companies`."""
    compiler = _Compiler(dialect == "postgresql", now, zone, workspace_id, kept or {})
    return compiler.condition(condition, CONTACTS)


def property_filters(
    where: Sequence[PropFilter],
    properties: Any,
    *,
    dialect: str,
    workspace_id: str,
    now: datetime,
    zone: ZoneInfo,
) -> list[Boolean]:
    """Filters on an events `properties` column, for filters that read no contact's time zone
    (scoring rules refuse the others), so no contact row is needed."""
    compiler = _Compiler(dialect == "postgresql", now, zone, workspace_id, {})
    no_contact = Zone(sa.null(), zone, now)
    return [compiler.property_holds(properties, item, no_contact) for item in where]


@dataclass
class _Compiler(ComparisonCompiler):
    workspace_id: str
    kept: Mapping[str, TrackedFilter]

    def condition(self, condition: Condition, contacts: sa.FromClause) -> Boolean:
        if isinstance(condition, AllCondition):
            return sa.and_(*(self.condition(child, contacts) for child in condition.all))
        if isinstance(condition, AnyCondition):
            return sa.or_(*(self.condition(child, contacts) for child in condition.any))
        if isinstance(condition, NotCondition):
            return sa.not_(self.condition(condition.not_, contacts))
        if isinstance(condition, AttrCondition):
            return definite(self.attribute(condition, contacts))
        if isinstance(condition, SegmentCondition):
            return self.member(condition.segment, contacts)
        if isinstance(condition, ScoreCondition):
            return self.score(condition, contacts)
        if isinstance(condition, LifecycleCondition):
            return self.stage(condition, contacts)
        if isinstance(condition, ConsentCondition):
            return self.consent(condition, contacts)
        assert isinstance(condition, EventCondition)
        return self.events(condition, contacts)

    def member(self, key: str, contacts: sa.FromClause) -> Boolean:
        members = (
            sa.select(MEMBERS.c.contact_id)
            .join(SEGMENTS, SEGMENTS.c.id == MEMBERS.c.segment_id)
            .where(SEGMENTS.c.workspace_id == self.workspace_id, SEGMENTS.c.key == key)
        )
        return contacts.c.id.in_(members)

    def stage(self, condition: LifecycleCondition, contacts: sa.FromClause) -> Boolean:
        # Definite without coalesce: neither contacts.id nor contact_stages.contact_id is NULL.
        staged = sa.select(CONTACT_STAGES.c.contact_id).where(
            CONTACT_STAGES.c.workspace_id == self.workspace_id,
            CONTACT_STAGES.c.stage.in_(condition.lifecycle.in_),
        )
        return contacts.c.id.in_(staged)

    def consent(self, condition: ConsentCondition, contacts: sa.FromClause) -> Boolean:
        spec = condition.consent
        consenting = sa.select(CONTACT_CONSENTS.c.contact_id).where(
            CONTACT_CONSENTS.c.workspace_id == self.workspace_id,
            CONTACT_CONSENTS.c.channel == spec.channel,
            CONTACT_CONSENTS.c.purpose == spec.purpose,
            CONTACT_CONSENTS.c.granted,
        )
        return contacts.c.id.in_(consenting)

    def score(self, condition: ScoreCondition, contacts: sa.FromClause) -> Boolean:
        spec = condition.score
        models, scores = SCORING_MODELS.alias("score_models"), CONTACT_SCORES.alias("scores")
        engagement = scores.c.engagement_base * decay_factor_sql(
            self.now, models.c.epoch, models.c.half_life_days, self.postgresql
        )
        part = {
            "fit": scores.c.fit,
            "engagement": engagement,
            "total": scores.c.fit + engagement,
        }[spec.part]
        value = sa.func.coalesce(
            sa.select(part)
            .select_from(scores.join(models, models.c.id == scores.c.model_id))
            .where(
                models.c.workspace_id == self.workspace_id,
                models.c.key == spec.model,
                scores.c.contact_id == contacts.c.id,
            )
            .scalar_subquery(),
            0.0,
        )
        # Compared as shown, to a hundredth of a point (`sodate.scoring.decay`).
        if spec.op is Operator.BETWEEN:
            low, high = shown_range(float(spec.value[0]), float(spec.value[1]))
            return sa.and_(value >= low, value < high)
        at_least, bound = shown_bound(spec.op.value, float(spec.value))
        return value >= bound if at_least else value < bound

    def attribute(self, condition: AttrCondition, contacts: sa.FromClause) -> Boolean:
        path = condition.path
        if path.kind is ValueKind.TIME:
            return self.time_compares(contacts.c[path.column], condition.op, condition.value)
        value: Value
        if path.source is Source.CONTACT:
            value = TextColumn(contacts.c[path.column], self.postgresql)
        elif path.source is Source.COMPANY:
            value = TextColumn(COMPANIES.c[path.column], self.postgresql)
        else:
            doc = contacts.c.traits if path.source is Source.TRAITS else COMPANIES.c.traits
            value = json_value(doc, path.path, self.postgresql)
        return self.compares(value, condition.op, condition.value, zone_of(contacts, self))

    def events(self, condition: EventCondition, contacts: sa.FromClause) -> Boolean:
        """The count compared, as tests of "at least k events" (`at_least`)."""
        spec = condition.event
        op, value = spec.count.op, spec.count.value

        def at_least(k: int) -> Boolean:
            return self.at_least(spec, k, contacts)

        if op == "gte":
            return at_least(value)
        if op == "gt":
            return at_least(value + 1)
        if op == "lte":
            return sa.not_(at_least(value + 1))
        if op == "lt":
            return sa.not_(at_least(value))
        exactly = sa.and_(at_least(value), sa.not_(at_least(value + 1)))
        return exactly if op == "eq" else sa.not_(exactly)

    def at_least(self, spec: EventSpec, k: int, contacts: sa.FromClause) -> Boolean:
        """The contacts with at least k events of the spec.

        Candidates come from `event_latest_times`: a contact with k such events since the
        window's start has its k-th latest time (beyond the times kept, its last kept one) at
        or after that start, so one range of the name's rows holds them all. That range is
        the answer itself when k is within the times kept, the spec has no filters and, for a
        window, no kept time is after now; otherwise each candidate's events are counted,
        stopping at the k-th. A spec with filters whose rows are kept
        (`sodate.conditions.filtered`) reads the range of that filter's rows instead, which is
        the answer on the same terms.
        """
        if k <= 0:
            return sa.true()
        since = self.now - terms.parse_positive_duration(spec.within) if spec.within else None
        found = answering(self.kept, spec, k, self.now) if spec.where else None
        if found is not None:
            latest = FILTERED.alias("filtered_times")
            owner = latest.c.filter_id == found.id
        else:
            latest = LATEST.alias("latest_times")
            name_id = sa.select(NAMES.c.id).where(
                NAMES.c.workspace_id == self.workspace_id, NAMES.c.name == spec.name
            )
            owner = latest.c.name_id == name_id.scalar_subquery()
        kth = latest.c[f"latest_{min(k, LATEST_KEPT)}"]
        where: list[Boolean] = [owner, kth.is_not(None) if since is None else kth >= since]
        if (spec.where and found is None) or k > LATEST_KEPT:
            where.append(self.counted(spec, k, since, latest.c.contact_id))
        elif since is not None:
            where.append(
                sa.or_(
                    latest.c.latest_1 <= self.now,
                    self.counted(spec, k, since, latest.c.contact_id),
                )
            )
        if self.postgresql:
            # A correlated EXISTS, which PostgreSQL turns into a semi-join, and under NOT into
            # an anti-join: `NOT IN (subquery)` it must run as a subplan, for every contact
            # over the whole list when that list outgrows work_mem.
            return sa.exists(sa.select(1).where(latest.c.contact_id == contacts.c.id, *where))
        # SQLite drives from the range of the IN list into contacts by their key.
        return contacts.c.id.in_(sa.select(latest.c.contact_id).where(*where))

    def counted(self, spec: EventSpec, k: int, since: datetime | None, contact_id: Any) -> Boolean:
        """The contact has at least k events of the spec, counted on `events`."""
        events = EVENTS.alias("matched_events")
        where: list[Boolean] = [
            events.c.workspace_id == self.workspace_id,
            events.c.contact_id == contact_id,
            events.c.name == spec.name,
        ]
        if since is not None:
            where += [events.c.timestamp >= since, events.c.timestamp <= self.now]
        source: sa.FromClause = events
        if any(reads_zone(item) for item in spec.where):
            owners = CONTACTS.alias("event_owners")
            source = events.join(owners, owners.c.id == events.c.contact_id)
            zone = zone_of(owners, self)
        else:
            zone = Zone(sa.null(), self.zone, self.now)
        where += [self.property_holds(events.c.properties, item, zone) for item in spec.where]
        return (
            sa.select(sa.literal(1))
            .select_from(source)
            .where(*where)
            .limit(1)
            .offset(k - 1)
            .exists()
        )
