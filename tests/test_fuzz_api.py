"""Fuzzing the tracking and contact APIs from their OpenAPI document: no 5xx, no partial write.

Schemathesis generates requests, valid and invalid, for every `/v1/*` tracking operation and
every `/api/v1/contacts*` and `/api/v1/companies*` operation of `/api/v1/openapi.json`, and sends
them to the in-process application with a workspace's keys (the write key by HTTP Basic, the
admin key as a Bearer token). No answer may be a 5xx, and each must conform to the document.
Around each call, the engines' events tell which tables committed transactions wrote, and the
row count of every table is read before and after:

- an answer in 4xx (or 5xx), or to a GET, leaves every table as it was;
- a tracking answer in 200 changes `event_inbox` alone, whose messages grow by exactly the
  accepted messages (a repeated `messageId` is dropped later, when messages are processed).

One database and one workspace serve a whole module: schemathesis runs many examples per test,
and fixtures do not re-run between them, so nothing here assumes empty tables. Generation is
derandomized and bounded, so that CI sees the same cases every time.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import event

from sodate.app import create_app
from sodate.contacts.schemas import ContactUpserted
from sodate.db.metadata import metadata
from sodate.events.models import InboxBase
from sodate.events.routes import ENDPOINTS, TrackingError
from sodate.events.schemas import MessageType, TrackingAccepted
from sodate.events.tracking import MessageRejected, check_message
from sodate.runtime import Runtime
from tests.conftest import bearer, make_settings, new_workspace, truncate_all

OPENAPI_PATH = "/api/v1/openapi.json"
# Tables that change without any request.
UNWATCHED_TABLES = frozenset({"clock_state", "service_heartbeats"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Few examples per test and the same ones on every run, for CI. To explore, SODATE_FUZZ_SCALE=10
# (say) runs ten times as many, and SODATE_FUZZ_RANDOM=1 draws new ones on each run.
SCALE = float(os.environ.get("SODATE_FUZZ_SCALE", "1"))
FUZZ_SETTINGS: dict[str, Any] = {
    "derandomize": os.environ.get("SODATE_FUZZ_RANDOM") != "1",
    "database": None,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
}
# Fuzzing only: the explicit phase would add schemathesis' coverage phase, hundreds of requests
# per tracking operation (their message schema has dozens of properties), too slow for CI.
FUZZ_PHASES = [Phase.generate, Phase.shrink]
# A write in SQL text, for the statements SQLAlchemy did not compile.
WRITE_STATEMENT = re.compile(
    r'\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.I
)


# --- the application under test ----------------------------------------------------------------


class Writes:
    """What a request wrote: the tables of committed writes, from the engines' events, and the
    row count of every table, read before and after in one query per database (the database
    and, on SQLite, the inbox's file).
    """

    def __init__(self, runtime: Runtime) -> None:
        engines = [runtime.db.engine]
        if runtime.inbox is not runtime.db:
            engines.append(runtime.inbox.engine)
        self._counts = [(engine, self._count_query(engine)) for engine in engines]
        self._pending: dict[int, set[str]] = {}
        self._committed: set[str] = set()
        for engine in engines:
            event.listen(engine, "after_cursor_execute", self._executed)
            event.listen(engine, "commit", self._commit)
            event.listen(engine, "rollback", self._rollback)

    @staticmethod
    def _count_query(engine: sa.Engine) -> sa.Select[Any]:
        present = set(sa.inspect(engine).get_table_names())
        tables = [
            table
            for table in [*metadata.sorted_tables, *InboxBase.metadata.sorted_tables]
            if table.name in present and table.name not in UNWATCHED_TABLES
        ]
        # The inbox keeps one row per request: what it holds is the count of messages.
        return sa.select(
            *(
                sa.select(
                    sa.func.coalesce(sa.func.sum(t.c.message_count), 0)
                    if t.name == "event_inbox"
                    else sa.func.count()
                )
                .select_from(t)
                .scalar_subquery()
                .label(t.name)
                for t in tables
            )
        )

    def _executed(
        self, connection: Any, _cursor: Any, statement: str, _p: Any, context: Any, _m: Any
    ) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            table = getattr(getattr(context.compiled, "statement", None), "table", None)
            name = getattr(table, "name", statement[:60])
        elif match := WRITE_STATEMENT.match(statement):
            name = match.group(1)
        else:
            return
        self._pending.setdefault(id(connection), set()).add(name)

    def _commit(self, connection: Any) -> None:
        self._committed |= self._pending.pop(id(connection), set())

    def _rollback(self, connection: Any) -> None:
        self._pending.pop(id(connection), None)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for engine, query in self._counts:
            with engine.connect() as connection:
                counts.update(connection.execute(query).one()._mapping)
        return counts

    def committed(self) -> set[str]:
        """The tables written by transactions committed since the last call."""
        tables, self._committed = self._committed, set()
        return tables


@dataclass
class FuzzTarget:
    runtime: Runtime
    app: FastAPI
    admin: dict[str, str]
    writer: dict[str, str]
    writes: Writes


def basic(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


@pytest.fixture(scope="module")
def fuzz_target(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    truncate_all(database_url)
    settings_ = make_settings(
        database_url, tmp_path_factory.mktemp("fuzz"), tracking_rate_limit=0, log_format="json"
    )
    runtime = Runtime.create(settings_)
    created = new_workspace(runtime)
    target = FuzzTarget(
        runtime=runtime,
        app=create_app(runtime),
        admin=bearer(created.admin_key.key),
        writer=basic(created.write_key.key),
        writes=Writes(runtime),
    )
    _seed(target)
    yield target
    runtime.close()
    truncate_all(database_url)


def _seed(target: FuzzTarget) -> None:
    """Contacts to find (one merged away, so that its old id redirects), and a company."""
    with TestClient(target.app) as client:
        ids = []
        for n in range(1, 4):
            response = client.post(
                "/api/v1/contacts",
                json={"email": f"user{n}@example.com", "traits": {"plan": "free"}},
                headers=target.admin,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["contact"]["id"])
        response = client.post(
            f"/api/v1/contacts/{ids[0]}/merge", json={"contact_id": ids[1]}, headers=target.admin
        )
        assert response.status_code == 200, response.text
        response = client.put(
            "/api/v1/companies/acme", json={"traits": {"name": "Acme"}}, headers=target.admin
        )
        assert response.status_code == 200, response.text


def _load_schema() -> schemathesis.BaseSchema:
    """The document of an application without a database: it depends on the routes only.

    It is loaded with the module so that each operation is a test of its own; the requests go to
    the `fuzz_target` application (`case.call(app=…)`).
    """
    settings_ = make_settings("sqlite://", Path(tempfile.gettempdir()), clock="system")
    runtime = Runtime.create(settings_)
    try:
        return schemathesis.openapi.from_asgi(OPENAPI_PATH, create_app(runtime))
    finally:
        runtime.close()


TestFunction = Callable[..., None]


def parametrize(schema: schemathesis.BaseSchema) -> Callable[[TestFunction], TestFunction]:
    """`schema.parametrize()`, typed."""
    decorator: Callable[[TestFunction], TestFunction] = schema.parametrize()
    return decorator


schema = _load_schema()
tracking_operations = parametrize(schema.include(path_regex=r"^/v1/"))
admin_operations = parametrize(schema.include(path_regex=r"^/api/v1/(contacts|companies)(/|$)"))


TRACKING_PATHS = [f"/v1/{name}" for name, _short, _type in ENDPOINTS]


def test_openapi_document_is_valid_and_complete() -> None:
    document = schema.raw_schema
    schema.validate()  # against the OpenAPI 3.1 schema
    references = []
    pending: list[Any] = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                references.append(node["$ref"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for reference in references:
        target = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
    for path in TRACKING_PATHS:
        operation = document["paths"][path]["post"]
        content = operation["requestBody"]["content"]
        assert set(content) == {"application/json", "text/plain"}
        assert content["application/json"]["schema"]["type"] == "object"
        assert {"200", "400", "401", "413", "429"} <= set(operation["responses"])
        assert operation["security"] == [{"WriteKeyBasic": []}, {"WriteKeyHeader": []}]


# --- checking writes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    case: Any
    status: int
    written: set[str]
    before: dict[str, int]
    after: dict[str, int]

    @property
    def label(self) -> str:
        return f"{self.case.method} {self.case.formatted_path} -> {self.status}"

    def changed(self) -> set[str]:
        return self.written | {
            name for name in self.before if self.before[name] != self.after[name]
        }

    def grown(self, table: str) -> int:
        return self.after[table] - self.before[table]


def call(target: FuzzTarget, case: Any, headers: dict[str, str]) -> tuple[Any, Call]:
    target.writes.committed()
    before = target.writes.counts()
    response = case.call(headers=headers, app=target.app)
    after = target.writes.counts()
    written = target.writes.committed()
    return response, Call(case, response.status_code, written, before, after)


def assert_no_write_unless_success(done: Call) -> None:
    if done.status >= 400 or done.case.method in SAFE_METHODS:
        assert not done.changed(), f"partial write: {done.label} wrote {done.changed()}"


def accepted_messages(body: Any, path: str, answer: TrackingAccepted) -> list[Any]:
    """The messages of the request that the answer says were accepted."""
    assert isinstance(body, dict)
    if path != "/v1/batch":
        assert answer.accepted == 1
        assert not answer.rejected
        return [body]
    messages = body["batch"]
    rejected = {entry.index for entry in answer.rejected}
    assert rejected <= set(range(len(messages)))
    assert answer.accepted + len(rejected) == len(messages)
    return [message for index, message in enumerate(messages) if index not in rejected]


# --- the fuzz tests ----------------------------------------------------------------------------


@tracking_operations
@settings(max_examples=int(15 * SCALE), phases=FUZZ_PHASES, **FUZZ_SETTINGS)
def test_tracking_api_survives_fuzzing(case: Any, fuzz_target: FuzzTarget) -> None:
    headers = fuzz_target.writer
    response, done = call(fuzz_target, case, headers)
    assert_no_write_unless_success(done)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        headers=headers,
    )
    if done.status != 200:
        return
    assert done.changed() <= {"event_inbox"}, f"{done.label} wrote {done.changed()}"
    answer = TrackingAccepted.model_validate_json(response.content)
    messages = accepted_messages(case.body, case.path, answer)
    assert done.grown("event_inbox") == len(messages), f"{done.label}: {answer}"


# The admin operations document their 200s only (their 422 in FastAPI's own shape, not the
# app's): other answers are checked against the app's one error format instead.
ErrorBody = TrackingError  # {"error": {"code", "message", "details"}}, on every route
ADMIN_STATUSES = frozenset({200, 201, 308, 400, 401, 403, 404, 409, 413, 422})
ANY_ROUTE = ADMIN_STATUSES | {405}


@admin_operations
@settings(max_examples=int(20 * SCALE), phases=FUZZ_PHASES, **FUZZ_SETTINGS)
def test_admin_api_survives_fuzzing(case: Any, fuzz_target: FuzzTarget) -> None:
    headers = fuzz_target.admin
    response, done = call(fuzz_target, case, headers)
    assert_no_write_unless_success(done)
    checks = [not_a_server_error, content_type_conformance]
    if done.status == 200:
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks, headers=headers)
    # A method the path does not document is 405, or another route of the same path's.
    allowed = ADMIN_STATUSES if case.method == case.operation.method.upper() else ANY_ROUTE
    assert done.status in allowed, f"{done.label}: {response.text[:500]}"
    if done.status == 201:
        assert (case.method, case.path) == ("POST", "/api/v1/contacts"), done.label
        assert ContactUpserted.model_validate_json(response.content).created
    elif done.status >= 400:
        ErrorBody.model_validate_json(response.content)


# --- hostile inputs, kept as regressions -------------------------------------------------------

DEEP_300 = "[" * 300 + "]" * 300
DEEP_2000 = "[" * 2000 + "]" * 2000


def hostile(method: str, path: str, body: str | None, status: int, *, auth: bool = True) -> Any:
    return pytest.param(method, path, body, status, auth, id=f"{method} {path} {body}"[:80])


HUGE = "9" * 400
"""An integer beyond what a double holds."""

HOSTILE_REQUESTS = [
    # Unpaired surrogates (valid JSON escapes, not Unicode) and NUL characters (which PostgreSQL
    # cannot store), in messages, in the write key, in traits and in parameters.
    hostile("POST", "/v1/track", '{"userId":"\\ud800","event":"x"}', 400),
    hostile("POST", "/v1/track", '{"userId":"u","event":"x","properties":{"\\udfff":1}}', 400),
    hostile("POST", "/v1/track", '{"userId":"u","event":"x\\u0000"}', 400),
    hostile("POST", "/v1/track", '{"userId":"u","event":"x","messageId":"m\\u0000"}', 400),
    hostile("POST", "/v1/track", '{"userId":"u","event":"x","properties":{"a":"\\\\u0000"}}', 200),
    hostile(
        "POST", "/v1/batch", '{"batch":[{"type":"track","userId":"u","event":"\\u0000"}]}', 400
    ),
    hostile("POST", "/v1/identify", '{"userId":"u","writeKey":"\\ud800"}', 401, auth=False),
    # Times whose clock-skew correction, or conversion to UTC, falls outside years 1 to 9999.
    hostile(
        "POST", "/v1/track", '{"userId":"u","event":"x","timestamp":"0001-01-01T00:00+01:00"}', 400
    ),
    hostile(
        "POST",
        "/v1/track",
        '{"userId":"u","event":"x","sentAt":"0001-01-01T00:00:00Z",'
        '"originalTimestamp":"9999-12-31T00:00:00Z"}',
        400,
    ),
    # Non-finite numbers (NaN, and 1e400 which Python reads as infinity) and deep nesting.
    hostile(
        "POST", "/v1/track", '{"userId":"u","event":"x","properties":{"a":NaN,"b":1e400}}', 200
    ),
    hostile("POST", "/v1/track", '{"userId":"u","event":"x","properties":' + DEEP_300 + "}", 400),
    # An integer beyond a double's range, which the event processor could not read back, and
    # a batch's context whose external ids are not objects (every message's context).
    hostile("POST", "/v1/track", '{"userId":"u","event":"x","properties":{"a":' + HUGE + "}}", 400),
    hostile(
        "POST",
        "/v1/batch",
        '{"batch":[{"type":"track","userId":"u","event":"x"}],"context":{"externalIds":["x"]}}',
        400,
    ),
    hostile("POST", "/v1/track", '{"userId":"u","event":"x","properties":' + DEEP_2000 + "}", 400),
    hostile("POST", "/api/v1/contacts", '{"user_id":"u\\u0000"}', 422),
    hostile("POST", "/api/v1/contacts", '{"user_id":"u","traits":{"x":"\\u0000"}}', 422),
    hostile("POST", "/api/v1/contacts", '{"user_id":"u","traits":{"x":"\\ud800"}}', 422),
    hostile("POST", "/api/v1/contacts", '{"user_id":"u","traits":{"x":NaN}}', 422),
    hostile("POST", "/api/v1/contacts", '{"user_id":"u","traits":{"x":1e400}}', 422),
    hostile("POST", "/api/v1/contacts", '{"user_id":"u","traits":{"x":' + DEEP_300 + "}}", 422),
    hostile("PATCH", "/api/v1/contacts/1", '{"traits":{"x":{"\\u0000":1}}}', 422),
    hostile("POST", "/api/v1/contacts/1/merge", '{"contact_id":3,"reason":"\\u0000"}', 422),
    hostile("PUT", "/api/v1/companies/acme", '{"traits":{"x":"\\u0000"}}', 422),
    hostile("PUT", "/api/v1/companies/ac%00me", '{"traits":{}}', 422),
    hostile("GET", "/api/v1/contacts?q=%00", None, 422),
    hostile("GET", "/api/v1/contacts?email=a%00", None, 422),
    hostile("GET", "/api/v1/contacts?trait.plan=%00", None, 422),
    hostile("GET", "/api/v1/contacts?external_id=line:%00", None, 422),
    hostile("GET", "/api/v1/companies?q=%00", None, 422),
    hostile("GET", "/api/v1/contacts?trait.a%22b=1", None, 422),
    hostile("GET", "/api/v1/contacts?trait.a%5Cb=1&trait.%E3%83%97=1", None, 200),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "auth"), HOSTILE_REQUESTS)
def test_hostile_input_is_refused_cleanly(
    fuzz_target: FuzzTarget, method: str, path: str, body: str | None, status: int, auth: bool
) -> None:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers |= fuzz_target.writer if path.startswith("/v1/") else fuzz_target.admin
    fuzz_target.writes.committed()
    before = fuzz_target.writes.counts()
    with TestClient(fuzz_target.app, raise_server_exceptions=False) as client:
        content = None if body is None else body.encode()
        response = client.request(method, path, content=content, headers=headers)
    assert response.status_code == status, response.text
    if status >= 400:
        assert not fuzz_target.writes.committed()
        assert fuzz_target.writes.counts() == before
        ErrorBody.model_validate_json(response.content)


# --- check_message on arbitrary JSON values ----------------------------------------------------

# Text as JSON can carry it, unpaired surrogates and NUL characters included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
plain_text = st.text(max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | plain_text | any_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(plain_text | any_text, children, max_size=4)
    ),
    max_leaves=12,
)


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of the right type nine times out of ten, else any JSON value."""
    return st.integers(0, 9).flatmap(lambda n: strategy if n else json_values)


objects = st.dictionaries(plain_text | any_text, json_values, max_size=4)
ids = st.text(min_size=1, max_size=10) | any_text | st.integers()
times = (
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    | st.datetimes().map(lambda value: value.isoformat() + "+23:59")
    | st.integers()
)
messages = st.fixed_dictionaries(
    {"userId": st.text(min_size=1, max_size=8), "type": mostly(st.sampled_from(MessageType))},
    optional={
        **dict.fromkeys(("messageId", "anonymousId", "groupId", "previousId"), mostly(ids)),
        **dict.fromkeys(("event", "name", "category"), mostly(ids)),
        **dict.fromkeys(("timestamp", "originalTimestamp", "sentAt"), mostly(times)),
        **dict.fromkeys(("properties", "traits"), mostly(objects)),
        "context": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "externalIds": st.lists(
                        mostly(st.fixed_dictionaries({"id": ids, "type": plain_text})),
                        max_size=2,
                    ),
                    "traits": objects,
                    "ip": any_text,
                },
            )
        ),
    },
)
RECEIVED_AT = datetime(2026, 4, 1, tzinfo=UTC)


@given(
    raw=mostly(messages),
    message_type=st.none() | st.sampled_from(MessageType),
    batch_sent_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    batch_context=st.none() | objects,
)
@example(
    raw={"type": "track", "userId": "u", "event": "e", "originalTimestamp": "9999-12-31T00:00Z"},
    message_type=None,
    batch_sent_at=datetime(1, 1, 1, tzinfo=UTC),
    batch_context=None,
)
@example(
    raw={"userId": "u", "properties": {"\ud800": float("nan")}},
    message_type=MessageType.PAGE,
    batch_sent_at=None,
    batch_context={"a": "\x00"},
)
@settings(max_examples=int(200 * SCALE), **FUZZ_SETTINGS)
def test_check_message_accepts_or_rejects_and_nothing_else(
    raw: Any,
    message_type: MessageType | None,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any] | None,
) -> None:
    try:
        accepted = check_message(
            raw,
            message_type=message_type,
            received_at=RECEIVED_AT,
            batch_sent_at=batch_sent_at,
            batch_context=batch_context,
        )
    except MessageRejected as rejected:
        errors = rejected.errors
        assert errors
        return
    # What is accepted can be stored on both databases, and read back as strict JSON, with
    # the parts it carries as JSON texts of their own (which the processor stores as they are).
    accepted.payload.encode()
    document = json.loads(accepted.payload, parse_constant=_not_json)
    assert document["messageId"] == accepted.message_id
    for text in (accepted.payload, document["properties"], document["context"]):
        assert "\\u0000" not in text.replace("\\\\", "")
        assert isinstance(json.loads(text, parse_constant=_not_json), dict)
        assert isinstance(orjson.loads(text), dict)  # as the event processor reads it


def _not_json(constant: str) -> Any:
    raise AssertionError(f"{constant} is not JSON")
