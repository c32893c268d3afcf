"""The SQL and in-memory evaluators agree on every condition, contact and event history.

Hypothesis builds contacts (traits of every JSON type, companies, time zones, events with
properties and times around "now", segment memberships, scores, lifecycle stages, consents
granted and withdrawn) and
conditions over the same names, stores the contacts in the real database, and asks both
evaluators. Values are drawn from small vocabularies so that conditions often match: text
differing only in case, dates on either side of a time zone's midnight, 29 February, numbers
equal across int and float.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from sodate.conditions.memory import Evaluation, EventFact
from sodate.conditions.schemas import ConditionError, parse_condition
from sodate.conditions.sql import (
    COMPANIES,
    CONTACT_CONSENTS,
    CONTACT_SCORES,
    CONTACT_STAGES,
    CONTACTS,
    EVENTS,
    LATEST,
    MEMBERS,
    SEGMENTS,
    matching_contacts,
)
from sodate.conditions.sql import SCORING_MODELS as SCORING_MODELS_TABLE
from sodate.conditions.standing import CHANNELS, STAGES
from sodate.conditions.state import load_states
from sodate.events.latest import keep_latest_times
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created

NOWS = (
    datetime(2026, 4, 1, 0, 30, tzinfo=UTC),
    datetime(2026, 2, 28, 15, 30, tzinfo=UTC),  # 1 March in Tokyo; 28 Feb in a non-leap year
    datetime(2028, 2, 28, 23, 59, tzinfo=UTC),  # a leap year
    datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC),
)
WORKSPACE_ZONES = ("Asia/Tokyo", "America/New_York", "UTC")
CONTACT_ZONES = (
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "UTC",
    "Not/AZone",
    "asia/tokyo",
)
TEXTS = (
    "Tokyo",
    "tokyo",
    "TOKYO-1",
    "営業部長",
    "Ａ",
    "x%_",
    "",
    "2026-03-31",
    "2026-04-01T08:00:00+09:00",
    "2024-02-29",
    "1990-03-01",
    "20260401",
)
NUMBERS: tuple[int | float, ...] = (
    *(0, 1, 1.0, 1.5, -2.25, 0.1, 1000, 10**15, 1e20),
    *(2**63 - 1, 1e308, -1e308, 5e-324),  # the ends of what conditions take
)
DATES = (
    "2026-03-31",
    "2026-04-01",
    "2024-02-29",
    "2026-04-01T09:00:00+09:00",
    "2026-03-31T23:00:00",
    "-30d",
    "-1d",
    "-12h",
    "+2d",
    "-90m",
    "+0d",
)
DURATIONS = ("1d", "30d", "12h", "90m", "400d")
TRAIT_KEYS = ("plan", "tags", "birthday", "役職", "address.city")
PROP_KEYS = ("path", "date", "plan.name")
EVENT_NAMES = ("Page Viewed", "Order Completed", "Signed Up")
SEGMENT_KEYS = ("vip", "lapsed")
PURPOSES = ("marketing", "newsletter")
SCORING_MODELS = {"decaying": 30.0, "steady": None}
"""Scoring models by key, with their half-lives in days; their epoch is `SCORE_EPOCH`."""
SCORE_EPOCH = datetime(2026, 1, 10, 6, 0, tzinfo=UTC)
SCORE_VALUES = (-5.0, 0.0, 10.0, 12.5, 20.0, 40.0)

scalars = st.one_of(st.sampled_from(TEXTS), st.sampled_from(NUMBERS), st.booleans())
json_values = st.one_of(
    scalars, st.none(), st.lists(scalars, max_size=3), st.dictionaries(st.just("k"), scalars)
)
times = st.builds(
    lambda days, minutes: NOWS[0] + timedelta(days=days, minutes=minutes),
    st.integers(-90, 5),
    st.integers(0, 24 * 60),
)


@st.composite
def documents(draw: st.DrawFn, keys: tuple[str, ...]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=5, unique=True)):
        if "." in key:
            outer, inner = key.split(".")
            document[outer] = draw(st.one_of(st.dictionaries(st.just(inner), json_values), scalars))
        elif key == "birthday" or key == "date":
            document[key] = draw(st.one_of(st.sampled_from(TEXTS), st.sampled_from(DATES[:5])))
        else:
            document[key] = draw(json_values)
    if draw(st.booleans()):
        document["timezone"] = draw(st.one_of(st.sampled_from(CONTACT_ZONES), st.just(5)))
    return document


hours = st.one_of(st.integers(-30, 24 * 120), st.integers(-30, 0))
"""Hours before now that an event happened; often after now (SQL keeps such a contact's
latest times but must not count them in a window)."""


@st.composite
def contacts(draw: st.DrawFn, now: datetime) -> dict[str, Any]:
    seen = draw(st.one_of(st.none(), times))
    return {
        "email": draw(st.one_of(st.none(), st.sampled_from(("a@example.jp", "Sato@Example.JP")))),
        "user_id": draw(st.one_of(st.none(), st.sampled_from(("u1", "U1", "tokyo-9")))),
        "phone": draw(st.one_of(st.none(), st.just("+819012345678"))),
        "traits": draw(documents(TRAIT_KEYS)),
        "created_at": draw(times),
        "first_seen_at": seen,
        "last_seen_at": None if seen is None else seen + timedelta(hours=draw(st.integers(0, 99))),
        "segments": draw(st.sets(st.sampled_from(SEGMENT_KEYS))),
        "scores": draw(
            st.dictionaries(
                st.sampled_from(sorted(SCORING_MODELS)),
                st.tuples(st.sampled_from(SCORE_VALUES), st.sampled_from(SCORE_VALUES)),
            )
        ),
        "stage": draw(st.one_of(st.none(), st.sampled_from(STAGES))),
        "consents": draw(
            st.dictionaries(
                st.tuples(st.sampled_from(CHANNELS), st.sampled_from(PURPOSES)), st.booleans()
            )
        ),
        "company": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "name": st.one_of(st.none(), st.sampled_from(("Sodate", "そだて"))),
                        "traits": documents(("employees", "industry", "tags")),
                    }
                ),
            )
        ),
        "events": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "name": st.sampled_from(EVENT_NAMES),
                        "properties": documents(PROP_KEYS),
                        "timestamp": st.builds(lambda hours: now - timedelta(hours=hours), hours),
                    }
                ),
                max_size=6,
            )
        )
        # A burst of one name: more events than the latest times SQL keeps per name.
        + draw(
            st.one_of(
                st.just([]),
                st.builds(
                    lambda name, ago: [
                        {"name": name, "properties": {}, "timestamp": now - timedelta(hours=h)}
                        for h in ago
                    ],
                    st.sampled_from(EVENT_NAMES),
                    st.lists(hours, min_size=6, max_size=8),
                ),
            )
        ),
    }


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for item in value if not isinstance(item, list | dict)]
    if isinstance(value, dict):
        return []
    return [value]


def _lookup(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


class Seen:
    """What the drawn contacts hold, so that conditions ask about it (and often split them)."""

    def __init__(self, people: list[dict[str, Any]]) -> None:
        self.values: dict[str, list[Any]] = {}
        for person in people:
            for key in (*TRAIT_KEYS, "timezone"):
                self._add(key, _lookup(person["traits"], key))
            for key in ("email", "user_id", "phone"):
                self._add(key, person[key])
            if person["company"]:
                self._add("company.name", person["company"]["name"])
                for key in ("employees", "industry", "tags"):
                    self._add(f"company.{key}", _lookup(person["company"]["traits"], key))
            for happened in person["events"]:
                for key in PROP_KEYS:
                    self._add(f"prop:{key}", _lookup(happened["properties"], key))

    def _add(self, key: str, value: Any) -> None:
        self.values.setdefault(key, []).extend(v for v in _leaves(value) if v is not None)

    def value(self, draw: st.DrawFn, key: str, fallback: st.SearchStrategy[Any]) -> Any:
        held = self.values.get(key) or []
        if held and draw(st.integers(0, 3)) > 0:
            value = draw(st.sampled_from(held))
            if isinstance(value, str) and value and draw(st.booleans()):
                value = draw(st.sampled_from((value.swapcase(), value[:3], value[-2:], value)))
            return value
        return draw(fallback)


def _value_strategies(draw: st.DrawFn, seen: Seen, key: str) -> dict[str, Any]:
    def held(fallback: st.SearchStrategy[Any]) -> Any:
        return seen.value(draw, key, fallback)

    def text() -> str:
        value = held(st.sampled_from([t for t in TEXTS if t]))
        return value if isinstance(value, str) and value else "tok"

    def number() -> int | float:
        value = held(st.sampled_from(NUMBERS))
        return value if isinstance(value, int | float) and not isinstance(value, bool) else 1

    def day() -> str:
        value = held(st.sampled_from(DATES))
        if isinstance(value, str) and value[:4].isdigit():
            return value[:10] if draw(st.booleans()) else draw(st.sampled_from(DATES))
        return draw(st.sampled_from(DATES))

    def days() -> list[str]:
        low, high = day(), day()
        try:
            parse_condition({"attr": "x", "op": "between", "value": [low, high]})
        except ConditionError:
            return [high, low]
        return [low, high]

    return {
        "eq": lambda: held(scalars),
        "ne": lambda: held(scalars),
        "in": lambda: [held(scalars) for _ in range(draw(st.integers(1, 3)))],
        "not_in": lambda: [held(scalars) for _ in range(draw(st.integers(1, 3)))],
        "contains": lambda: held(scalars) if draw(st.booleans()) else text(),
        "not_contains": text,
        "starts_with": text,
        "ends_with": text,
        "gt": number,
        "gte": number,
        "lt": number,
        "lte": number,
        "between": lambda: sorted([number(), number()]) if draw(st.booleans()) else days(),
        "before": day,
        "after": day,
        "within_last": lambda: draw(st.sampled_from(DURATIONS)),
        "anniversary": lambda: draw(st.sampled_from((None, "0d", "+1d", "-1d", "+3d"))),
        "exists": lambda: None,
        "not_exists": lambda: None,
    }


TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with")
TIME_OPS = ("before", "after", "between", "within_last", "exists", "not_exists")
TEXT_FIELDS = ("email", "user_id", "phone", "company.name")


def _comparison(draw: st.DrawFn, seen: Seen, key: str, kind: str) -> tuple[str, Any]:
    values = _value_strategies(draw, seen, key)
    if kind == "time":
        op = draw(st.sampled_from(TIME_OPS))
    elif kind == "text":
        op = draw(st.sampled_from((*TEXT_OPS, "exists", "not_exists")))
    else:
        op = draw(st.sampled_from(sorted(values)))
    value = values[op]()
    if kind == "text" and value is not None:
        value = [str(v) for v in value] if isinstance(value, list) else str(value) or "x"
    return op, value


@st.composite
def attribute_conditions(draw: st.DrawFn, seen: Seen) -> dict[str, Any]:
    held = sorted(key for key, values in seen.values.items() if values and ":" not in key)
    attr = draw(
        st.sampled_from(held)
        if held and draw(st.integers(0, 2)) > 0
        else st.one_of(
            st.sampled_from((*TRAIT_KEYS, "timezone")),
            st.sampled_from(("company.name", "company.employees", "company.tags")),
            st.sampled_from(("email", "user_id", "phone")),
            st.sampled_from(("created_at", "first_seen_at", "last_seen_at")),
        )
    )
    kind = "time" if attr.endswith("_at") else "text" if attr in TEXT_FIELDS else "json"
    op, value = _comparison(draw, seen, attr, kind)
    node: dict[str, Any] = {"attr": attr, "op": op}
    if value is not None:
        node["value"] = value
    return node


@st.composite
def event_conditions(draw: st.DrawFn, seen: Seen) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(st.sampled_from(EVENT_NAMES))}
    if draw(st.booleans()):
        spec["within"] = draw(st.sampled_from(DURATIONS))
    if draw(st.booleans()):
        spec["count"] = {
            "op": draw(st.sampled_from(("eq", "ne", "gt", "gte", "lt", "lte"))),
            # Beyond 5, the latest times kept, SQL counts a contact's events.
            "value": draw(st.integers(0, 7)),
        }
    wheres = []
    for _ in range(draw(st.integers(0, 2))):
        prop = draw(st.sampled_from(PROP_KEYS))
        op, value = _comparison(draw, seen, f"prop:{prop}", "json")
        node: dict[str, Any] = {"prop": prop, "op": op}
        if value is not None:
            node["value"] = value
        wheres.append(node)
    if wheres:
        spec["where"] = wheres
    return {"event": spec}


@st.composite
def score_conditions(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": draw(st.sampled_from((*sorted(SCORING_MODELS), "unknown"))),
        "op": draw(st.sampled_from(("gt", "gte", "lt", "lte", "between"))),
    }
    values = st.sampled_from((*SCORE_VALUES, 15.0, 30.0, 52.5, -1e12, 1e12))
    if spec["op"] == "between":
        spec["value"] = sorted([draw(values), draw(values)])
    else:
        spec["value"] = draw(values)
    if draw(st.booleans()):
        spec["part"] = draw(st.sampled_from(("total", "fit", "engagement")))
    return {"score": spec}


def conditions(seen: Seen) -> st.SearchStrategy[dict[str, Any]]:
    segments = st.sampled_from((*SEGMENT_KEYS, "nobody")).map(lambda key: {"segment": key})
    stages = st.lists(st.sampled_from(STAGES), min_size=1, max_size=3, unique=True).map(
        lambda names: {"lifecycle": {"in": names}}
    )
    consents = st.fixed_dictionaries(
        {"channel": st.sampled_from(CHANNELS)},
        optional={"purpose": st.sampled_from(PURPOSES)},
    ).map(lambda spec: {"consent": spec})
    return st.recursive(
        st.one_of(
            attribute_conditions(seen),
            event_conditions(seen),
            segments,
            score_conditions(),
            stages,
            consents,
        ),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"all": items}),
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
            children.map(lambda child: {"not": child}),
        ),
        max_leaves=4,
    )


def _store(runtime: Runtime, workspace_id: str, people: list[dict[str, Any]]) -> list[int]:
    ids = []
    with runtime.db.transaction() as session:
        # Latest times have no foreign key to cascade from contacts (`sodate/events/README.md`).
        session.execute(
            sa.delete(LATEST).where(
                LATEST.c.contact_id.in_(
                    sa.select(CONTACTS.c.id).where(CONTACTS.c.workspace_id == workspace_id)
                )
            )
        )
        for table in (
            CONTACT_STAGES,
            CONTACT_CONSENTS,
            CONTACT_SCORES,
            SCORING_MODELS_TABLE,
            MEMBERS,
            SEGMENTS,
            EVENTS,
            CONTACTS,
            COMPANIES,
        ):
            session.execute(sa.delete(table).where(table.c.workspace_id == workspace_id))
        model_ids = {
            key: session.execute(
                sa.insert(SCORING_MODELS_TABLE)
                .values(
                    workspace_id=workspace_id,
                    key=key,
                    name=key,
                    definition={},
                    half_life_days=half_life,
                    epoch=SCORE_EPOCH,
                    created_at=NOWS[0],
                    updated_at=NOWS[0],
                )
                .returning(SCORING_MODELS_TABLE.c.id)
            ).scalar_one()
            for key, half_life in SCORING_MODELS.items()
        }
        segment_ids = {
            key: session.execute(
                sa.insert(SEGMENTS)
                .values(
                    workspace_id=workspace_id,
                    key=key,
                    name=key,
                    kind="static",
                    time_dependent=False,
                    created_at=NOWS[0],
                    updated_at=NOWS[0],
                )
                .returning(SEGMENTS.c.id)
            ).scalar_one()
            for key in SEGMENT_KEYS
        }
        for number, person in enumerate(people):
            company_id = None
            if person["company"] is not None:
                company_id = session.execute(
                    sa.insert(COMPANIES)
                    .values(
                        workspace_id=workspace_id,
                        group_key=f"g{number}",
                        name=person["company"]["name"],
                        traits=person["company"]["traits"],
                        created_at=NOWS[0],
                        updated_at=NOWS[0],
                    )
                    .returning(COMPANIES.c.id)
                ).scalar_one()
            contact_id = session.execute(
                sa.insert(CONTACTS)
                .values(
                    workspace_id=workspace_id,
                    user_id=person["user_id"],
                    email=person["email"],
                    phone=person["phone"],
                    traits=person["traits"],
                    search_text="",
                    company_id=company_id,
                    sources=[],
                    first_seen_at=person["first_seen_at"],
                    last_seen_at=person["last_seen_at"],
                    created_at=person["created_at"],
                    updated_at=person["created_at"],
                )
                .returning(CONTACTS.c.id)
            ).scalar_one()
            ids.append(contact_id)
            for key, (fit, base) in person.get("scores", {}).items():
                session.execute(
                    sa.insert(CONTACT_SCORES).values(
                        model_id=model_ids[key],
                        contact_id=contact_id,
                        workspace_id=workspace_id,
                        fit=fit,
                        engagement_base=base,
                        level=0,
                        updated_at=NOWS[0],
                    )
                )
            if person.get("stage") is not None:
                session.execute(
                    sa.insert(CONTACT_STAGES).values(
                        workspace_id=workspace_id,
                        contact_id=contact_id,
                        stage=person["stage"],
                        since=NOWS[0],
                        resume_stage=None,
                        cycle_started_at=None,
                    )
                )
            for (channel, purpose), granted in person.get("consents", {}).items():
                session.execute(
                    sa.insert(CONTACT_CONSENTS).values(
                        workspace_id=workspace_id,
                        contact_id=contact_id,
                        channel=channel,
                        purpose=purpose,
                        granted=granted,
                        since=NOWS[0],
                        record_id=0,
                    )
                )
            for key in person.get("segments", ()):
                session.execute(
                    sa.insert(MEMBERS).values(
                        segment_id=segment_ids[key],
                        contact_id=contact_id,
                        workspace_id=workspace_id,
                        since=NOWS[0],
                    )
                )
            for index, event in enumerate(person["events"]):
                session.execute(
                    sa.insert(EVENTS).values(
                        workspace_id=workspace_id,
                        contact_id=contact_id,
                        message_id=f"m-{contact_id}-{index}",
                        type="track",
                        name=event["name"],
                        properties=event["properties"],
                        context={},
                        timestamp=event["timestamp"],
                        received_at=event["timestamp"],
                    )
                )
            # As the pipeline keeps them, in two batches: the second may hold older events.
            times = [(contact_id, event["name"], event["timestamp"]) for event in person["events"]]
            half = len(times) // 2
            keep_latest_times(session, workspace_id, times[:half])
            keep_latest_times(session, workspace_id, times[half:])
    return ids


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_sql_and_memory_agree(runtime: Runtime, workspace: Created, data: st.DataObject) -> None:
    now = data.draw(st.sampled_from(NOWS), label="now")
    zone = ZoneInfo(data.draw(st.sampled_from(WORKSPACE_ZONES), label="zone"))
    people = data.draw(st.lists(contacts(now), min_size=2, max_size=6), label="contacts")
    documents_ = data.draw(
        st.lists(conditions(Seen(people)), min_size=1, max_size=8), label="conditions"
    )
    parsed = []
    for document in documents_:
        try:
            parsed.append(parse_condition(document))
        except ConditionError:
            assume(False)
    workspace_id = workspace.workspace.id
    ids = _store(runtime, workspace_id, people)
    dialect = runtime.db.engine.dialect.name
    matched = 0
    with runtime.db.read() as session:
        loaded = load_states(session, workspace_id, ids, conditions=parsed, now=now, zone=zone)
        # Real-time work: one evaluation for all the conditions (answers shared between them
        # must not leak from one to another), with most events counted by the database.
        real_time = loaded.evaluation(now=now, zone=zone)
        # Every event in memory, so that the evaluator's own counting is held to SQL's.
        facts: dict[int, list[EventFact]] = defaultdict(list)
        for contact_id, name, properties, timestamp in session.execute(
            sa.select(EVENTS.c.contact_id, EVENTS.c.name, EVENTS.c.properties, EVENTS.c.timestamp)
            .where(EVENTS.c.workspace_id == workspace_id)
            .order_by(EVENTS.c.timestamp)
        ):
            facts[contact_id].append(EventFact(name, properties, timestamp))
        in_memory = Evaluation(
            {c: state._replace(events=facts[c]) for c, state in loaded.states.items()},
            now=now,
            zone=zone,
        )
        for condition in parsed:
            in_sql = set(
                session.execute(
                    matching_contacts(
                        condition, dialect=dialect, workspace_id=workspace_id, now=now, zone=zone
                    )
                ).scalars()
            )
            assert in_memory.matching(condition, ids) == in_sql, condition
            assert real_time.matching(condition, ids) == in_sql, condition
            if 0 < len(in_sql) < len(ids):
                matched += 1
    event(f"conditions that split the contacts: {min(matched, 3)}+")


@pytest.mark.parametrize(
    "document",
    [
        {"attr": "役職", "op": "contains", "value": "部長"},
        {"attr": "company.tags", "op": "contains", "value": "vip"},
        {"event": {"name": "Order Completed", "count": {"op": "lt", "value": 2}}},
    ],
)
def test_keys_written_by_any_path_are_found(
    runtime: Runtime, workspace: Created, document: dict[str, Any]
) -> None:
    """Traits written through SQLAlchemy (not only the driver) are readable by SQL paths."""
    person = {
        "email": None,
        "user_id": None,
        "phone": None,
        "traits": {"役職": "営業部長"},
        "created_at": NOWS[0],
        "first_seen_at": None,
        "last_seen_at": None,
        "company": {"name": "そだて", "traits": {"tags": ["vip", "jp"]}},
        "events": [
            {"name": "Order Completed", "properties": {}, "timestamp": NOWS[0]},
        ],
    }
    ids = _store(runtime, workspace.workspace.id, [person])
    with runtime.db.read() as session:
        found = session.execute(
            matching_contacts(
                parse_condition(document),
                dialect=runtime.db.engine.dialect.name,
                workspace_id=workspace.workspace.id,
                now=NOWS[0],
                zone=ZoneInfo("Asia/Tokyo"),
            )
        ).scalars()
        assert list(found) == ids


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # Eight page views an hour apart ending two hours ago, and one three hours from now.
        ({"within": "1d", "count": {"op": "gte", "value": 8}}, True),
        ({"within": "1d", "count": {"op": "gte", "value": 9}}, False),
        ({"within": "1d", "count": {"op": "eq", "value": 6}}, False),
        ({"within": "1d", "count": {"op": "lt", "value": 9}}, True),
        ({"within": "4h", "count": {"op": "eq", "value": 3}}, True),
        ({"within": "90m"}, False),
        ({"count": {"op": "gte", "value": 9}}, True),
        ({"count": {"op": "gt", "value": 9}}, False),
        ({"within": "1d", "where": [{"prop": "n", "op": "gte", "value": 2}]}, True),
        (
            {
                "within": "1d",
                "where": [{"prop": "n", "op": "gte", "value": 2}],
                "count": {"op": "eq", "value": 6},
            },
            True,
        ),
    ],
)
def test_counts_beyond_the_latest_times_kept_and_after_now(
    runtime: Runtime, workspace: Created, spec: dict[str, Any], expected: bool
) -> None:
    """Both evaluators count on the events where the latest times kept cannot tell."""
    hours = (9, 8, 7, 6, 5, 4, 3, 2, -3)
    found = _matches_by_both(runtime, workspace.workspace.id, hours, spec)
    assert found == (expected, expected)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # Eight page views an hour apart ending two hours ago: counts the latest times answer.
        ({"within": "4h", "count": {"op": "gte", "value": 3}}, True),
        ({"within": "4h", "count": {"op": "eq", "value": 3}}, True),
        ({"within": "4h", "count": {"op": "gte", "value": 4}}, False),
        ({"within": "90m"}, False),
        ({"within": "1d", "count": {"op": "gte", "value": 5}}, True),
        ({"within": "1d", "count": {"op": "gt", "value": 4}}, True),
        ({"within": "1d", "count": {"op": "lt", "value": 5}}, False),
        ({"count": {"op": "eq", "value": 4}}, False),
        ({"count": {"op": "lte", "value": 4}}, False),
        ({"count": {"op": "ne", "value": 0}}, True),
    ],
)
def test_counts_read_from_the_latest_times(
    runtime: Runtime, workspace: Created, spec: dict[str, Any], expected: bool
) -> None:
    found = _matches_by_both(runtime, workspace.workspace.id, (9, 8, 7, 6, 5, 4, 3, 2), spec)
    assert found == (expected, expected)


def _matches_by_both(
    runtime: Runtime, workspace_id: str, hours: tuple[int, ...], spec: dict[str, Any]
) -> tuple[bool, bool]:
    """Whether a contact with page views `hours` before now (numbered `n` from 0) matches a
    page-view count in SQL and in real time (state loaded by `load_states`)."""
    now, zone = NOWS[0], ZoneInfo("Asia/Tokyo")
    person: dict[str, Any] = {
        "email": None,
        "user_id": None,
        "phone": None,
        "traits": {},
        "created_at": now,
        "first_seen_at": None,
        "last_seen_at": None,
        "company": None,
        "events": [
            {"name": "Page Viewed", "properties": {"n": n}, "timestamp": now - timedelta(hours=h)}
            for n, h in enumerate(hours)
        ],
    }
    ids = _store(runtime, workspace_id, [person])
    condition = parse_condition({"event": {"name": "Page Viewed", **spec}})
    with runtime.db.read() as session:
        in_sql = session.execute(
            matching_contacts(
                condition,
                dialect=runtime.db.engine.dialect.name,
                workspace_id=workspace_id,
                now=now,
                zone=zone,
            )
        ).scalars()
        loaded = load_states(session, workspace_id, ids, conditions=[condition], now=now, zone=zone)
        real_time = loaded.evaluation(now=now, zone=zone).matching(condition, set(ids))
        return list(in_sql) == ids, real_time == set(ids)
