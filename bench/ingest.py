"""Tracking ingest through /v1/batch, fully processed, beside the raw insert rate of the rows.

    python bench/ingest.py --events 100000 --contacts 10000 [--database-url URL] [--json]
    python bench/ingest.py --events 20000 --mode inprocess --profile

`http` mode starts a real `sodate up` (subprocess, 127.0.0.1 only; its background services
as deployed, SQLite's `wal-checkpointer` among them) and sends the events as
/v1/batch requests of `--batch` messages from `--clients` concurrent keep-alive connections
(requests built beforehand, `KeepAliveConnection`). The clock
runs from the first request until the `event_inbox` table is empty: "accept" is events per
second until the last 200, "processed" is events per second until the inbox is empty.
`inprocess` mode calls `sodate.events.ingest.ingest` for every batch, then `process_pending`
until nothing is left, in this process and one thread (beside the log's checkpointer, as
deployed), so the HTTP layer and thread hand-offs are out of the picture (`--profile` runs it
under cProfile and prints the top functions).
"Raw insert" is the same rows (read back from `events`, new message ids) inserted into the
same `events` table by the pipeline's own event insert alone (`insert_events`: one executemany
on SQLite, COPY on PostgreSQL), one transaction per batch of `--batch`.

Without --database-url it uses a fresh SQLite file in a temporary directory; with one (e.g.
the throw-away cluster of `scripts/with-test-postgres`), the schema is dropped and recreated.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, SECRET, SODATE, reset  # the root is on the path now
from sodate.db.bulk import DriverValues
from sodate.db.engine import Database
from sodate.events.inbox import open_inbox
from sodate.events.models import Event, InboxRequest
from sodate.events.service import EventRow, insert_events
from sodate.runtime import Runtime
from sodate.settings import Settings

EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
INBOX: sa.Table = InboxRequest.__table__  # type: ignore[assignment]

PAGES = (
    ("Home", "/"),
    ("Products", "/products"),
    ("Product", "/products/{item}"),
    ("Pricing", "/pricing"),
    ("Blog", "/blog/{item}"),
    ("Contact", "/contact"),
)
TRACKS = (
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Video Played",
    "Form Submitted",
    "Newsletter Signed Up",
)
USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
FAMILY = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "Smith", "Tanaka", "Kato")
GIVEN = ("太郎", "花子", "健", "美咲", "John", "Yui", "Ken", "Aoi")


# --- the workload -------------------------------------------------------------------------


@dataclass
class Workload:
    """Pre-encoded /v1/batch bodies, and how many messages of each type they hold."""

    bodies: list[tuple[bytes, int]]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(n for _body, n in self.bodies)


class Messages:
    """A realistic mix over a pool of contacts, deterministic for a seed.

    Every contact browses anonymously (`anonymousId`). A fraction of them (`known`) identify
    once at some point, with userId, email and name traits; their later events carry the
    userId as well, and now and then they send another identify (a trait update).
    """

    def __init__(self, contacts: int, *, known: float, seed: int, prefix: str = "") -> None:
        self.random = random.Random(seed)
        # Random, as the SDKs make them (uuid4), so that the message id index is written at
        # random places; its own generator keeps the rest of the workload as it was.
        self.ids = random.Random(f"{seed}-message-ids")
        self.contacts = contacts
        self.known = {c for c in range(contacts) if self.random.random() < known}
        self.identified: set[int] = set()
        self.prefix = prefix
        self.sequence = 0
        self.start = datetime.now(UTC) - timedelta(hours=1)

    def next(self) -> dict[str, Any]:
        r = self.random
        contact = r.randrange(self.contacts)
        self.sequence += 1
        base: dict[str, Any] = {
            "messageId": self.prefix + str(uuid.UUID(int=self.ids.getrandbits(128), version=4)),
            "anonymousId": f"{self.prefix}anon-{contact:07d}",
            "timestamp": (self.start + timedelta(milliseconds=self.sequence)).isoformat(),
            "context": {
                "ip": f"203.0.113.{contact % 250 + 1}",
                "userAgent": USER_AGENT,
                "library": {"name": "analytics.js", "version": "4.1.0"},
                "locale": "ja-JP",
            },
        }
        identified = contact in self.identified
        if contact in self.known and (
            (not identified and r.random() < 0.3) or (identified and r.random() < 0.03)
        ):
            self.identified.add(contact)
            return {**base, **self.identify(contact)}
        if identified:
            base["userId"] = self.user_id(contact)
        if r.random() < 0.65:
            title, path = r.choice(PAGES)
            path = path.format(item=r.randrange(500))
            return {
                **base,
                "type": "page",
                "name": title,
                "properties": {
                    "path": path,
                    "url": f"https://shop.example.jp{path}",
                    "title": f"{title} | Example Shop",
                    "referrer": "https://www.google.com/",
                },
            }
        return {
            **base,
            "type": "track",
            "event": r.choice(TRACKS),
            "properties": {
                "product_id": f"sku-{r.randrange(2000)}",
                "price": round(r.uniform(500, 20000), 0),
                "currency": "JPY",
                "category": r.choice(("shoes", "bags", "books", "tea")),
            },
        }

    def user_id(self, contact: int) -> str:
        return f"{self.prefix}user-{contact:07d}"

    def identify(self, contact: int) -> dict[str, Any]:
        r = self.random
        return {
            "type": "identify",
            "userId": self.user_id(contact),
            "traits": {
                "email": f"{self.prefix}user{contact}@example.jp",
                "firstName": r.choice(GIVEN),
                "lastName": r.choice(FAMILY),
                "plan": r.choice(("free", "pro", "business")),
                "newsletter": r.random() < 0.5,
            },
        }


SCORING_MODEL: dict[str, Any] = {
    "name": "bench",
    "fit": [
        {"when": {"attr": "plan", "op": "eq", "value": "business"}, "points": 15},
        {"when": {"attr": "plan", "op": "eq", "value": "pro"}, "points": 10},
        {"when": {"attr": "newsletter", "op": "eq", "value": True}, "points": 3},
        {"when": {"attr": "email", "op": "ends_with", "value": "@gmail.com"}, "points": -5},
    ],
    "engagement": [
        {
            "event": "Page Viewed",
            "where": [{"prop": "path", "op": "starts_with", "value": "/products"}],
            "points": 1,
            "max_per_day": 5,
        },
        {"event": "Product Viewed", "points": 2, "max_total": 40},
        {"event": "Product Added", "points": 5},
        {"event": "Checkout Started", "points": 8, "max_per_day": 8},
        {"event": "Video Played", "points": 3},
        {"event": "Page Viewed", "points": 1, "max_per_day": 3},
    ],
    "decay": {"half_life_days": 30},
    "thresholds": {"mql": 60, "warm": 30},
}
"""`--scoring`: a model of 10 rules (4 fit, 6 engagement with caps) over what the workload sends."""

LIFECYCLE_RULES: dict[str, Any] = {
    "rules": {
        "subscriber": {"attr": "email", "op": "exists"},
        "lead": {"event": {"name": "Product Added"}},
        "opportunity": {"event": {"name": "Checkout Started", "count": {"op": "gte", "value": 2}}},
    },
    "dormant": {"after_days": 90},
}
"""`--lifecycle`: stage rules over what the workload sends (with `--scoring`, MQL by its `mql`)."""


def lifecycle_rules(scoring: bool) -> dict[str, Any]:
    if scoring:
        return {**LIFECYCLE_RULES, "mql": {"model": "bench", "threshold": "mql"}}
    return LIFECYCLE_RULES


def segment_definitions(count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` live segments over what the workload sends, of five kinds in turn: a trait, page
    views with a property filter in a window, a compound (trait AND event count in a window AND
    NOT event), an alternative of two, and activity in the last day (which every event moves)."""
    plans = ("free", "pro", "business")
    definitions: list[tuple[str, dict[str, Any]]] = []
    for n in range(count):
        plan, track = plans[n % 3], TRACKS[n % len(TRACKS)]
        shapes: list[dict[str, Any]] = [
            {"attr": "plan", "op": "eq", "value": plan},
            {
                "event": {
                    "name": "Page Viewed",
                    "where": [{"prop": "path", "op": "starts_with", "value": "/products"}],
                    "count": {"op": "gte", "value": 2 + n % 4},
                    "within": "30d",
                }
            },
            {
                "all": [
                    {"attr": "plan", "op": "in", "value": [plan, "business"]},
                    {"event": {"name": track, "within": "7d"}},
                    {"not": {"event": {"name": "Checkout Started", "within": "1d"}}},
                ]
            },
            {
                "any": [
                    {"attr": "email", "op": "ends_with", "value": f"{n}@example.jp"},
                    {"event": {"name": track, "count": {"op": "gte", "value": 3}}},
                ]
            },
            {"attr": "last_seen_at", "op": "within_last", "value": "1d"},
        ]
        definitions.append((f"bench-{n}", shapes[n % len(shapes)]))
    return definitions


def build_workload(
    events: int, contacts: int, batch: int, *, known: float, seed: int, history: int = 0
) -> tuple[Workload, Workload]:
    """The history (the first `history` events, a multiple of `batch`), then the workload."""
    messages = Messages(contacts, known=known, seed=seed)
    before, workload = Workload(bodies=[]), Workload(bodies=[])
    for start in range(0, history + events, batch):
        target = before if start < history else workload
        chunk = [messages.next() for _ in range(min(batch, history + events - start))]
        for message in chunk:
            target.counts[message["type"]] = target.counts.get(message["type"], 0) + 1
        document = {"batch": chunk, "sentAt": datetime.now(UTC).isoformat()}
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        target.bodies.append((body, len(chunk)))
    return before, workload


# --- database and server ------------------------------------------------------------------


def dialect_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A real `sodate up` on 127.0.0.1 and a fresh workspace, stopped on exit."""

    def __init__(self, url: str, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SODATE_")}
        self.env.update(
            {
                "SODATE_DATABASE_URL": url,
                "SODATE_DATA_DIR": str(data_dir),
                "SODATE_SECRET_KEY": SECRET,
                "SODATE_HOST": "127.0.0.1",
                "SODATE_TRACKING_RATE_LIMIT": "0",
                "SODATE_LOG_LEVEL": "WARNING",
                **(extra_env or {}),
            }
        )
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.write_key = ""
        self.admin_key = ""

    def __enter__(self) -> Server:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [SODATE, "up", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_healthy()
            created = subprocess.run(
                [SODATE, "workspace", "create", "Bench", "--json"],
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            keys = json.loads(created.stdout)
            self.write_key = keys["write_key"]["key"]
            self.admin_key = keys["admin_key"]["key"]
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _wait_healthy(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=1) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"sodate up exited early; see {self.log_path}")
                try:
                    if http.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise SystemExit(f"sodate up did not become healthy in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def cpu_seconds(self) -> float | None:
        """User + system CPU that `sodate up` has used so far: the HTTP server and its
        background services' process (Linux /proc), or None."""
        if self.process is None:
            return None
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(pid) for pid in children.read_text().split()]
            ticks = 0
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
        except OSError:
            return None
        return ticks / os.sysconf("SC_CLK_TCK")

    def server_log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def scalar(db: Database, statement: sa.Select[Any]) -> int:
    """A count read in a deferred (SQLite) transaction, so it never takes the write lock."""
    with db.read() as session:
        return int(session.execute(statement).scalar() or 0)


INBOX_COUNT = sa.select(sa.func.coalesce(sa.func.sum(INBOX.c.message_count), 0))
EVENTS_COUNT = sa.select(sa.func.count()).select_from(EVENTS)


# --- the runs -----------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    mode: str
    events: int
    batch: int
    clients: int
    accept_seconds: float
    processed_seconds: float | None
    """From the first request to the moment the inbox was empty (in-process: accept + process)."""
    cpu_seconds: float | None = None
    """CPU used meanwhile: the server process's (http), or this process's (inprocess)."""
    accept_cpu_seconds: float | None = None
    """In-process only: the part of `cpu_seconds` spent accepting."""
    process_seconds: float | None = None
    """In-process only: the process_pending loop alone."""
    backlog_at_accept_end: int | None = None
    peak_backlog: int | None = None
    raw_insert_per_second: float | None = None
    profiled: bool = False
    steps: dict[str, float] = field(default_factory=dict)
    """In-process only: seconds spent in each pipeline step and inbox statement."""

    @property
    def accept_per_second(self) -> float:
        return self.events / self.accept_seconds

    @property
    def processed_per_second(self) -> float | None:
        return self.events / self.processed_seconds if self.processed_seconds else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "mode": self.mode,
            "events": self.events,
            "batch": self.batch,
            "clients": self.clients,
            "accept_seconds": round(self.accept_seconds, 3),
            "processed_seconds": _round(self.processed_seconds, 3),
            "accept_per_second": round(self.accept_per_second),
            "processed_per_second": _round(self.processed_per_second),
            "cpu_seconds": _round(self.cpu_seconds, 2),
            "cpu_us_per_event": _round(
                self.cpu_seconds / self.events * 1e6 if self.cpu_seconds else None
            ),
            "accept_cpu_us_per_event": _round(
                self.accept_cpu_seconds / self.events * 1e6 if self.accept_cpu_seconds else None
            ),
            "process_only_per_second": (
                round(self.events / self.process_seconds) if self.process_seconds else None
            ),
            "backlog_at_accept_end": self.backlog_at_accept_end,
            "peak_backlog": self.peak_backlog,
            "raw_insert_per_second": (
                round(self.raw_insert_per_second) if self.raw_insert_per_second else None
            ),
            "processed_vs_raw": (
                round(self.processed_per_second / self.raw_insert_per_second, 3)
                if self.raw_insert_per_second and self.processed_per_second
                else None
            ),
            "profiled": self.profiled,
            "process_seconds_by_step": {k: round(v, 3) for k, v in self.steps.items()},
        }


def _round(value: float | None, digits: int | None = None) -> Any:
    return None if value is None else round(value, digits)


def run_http(
    url: str,
    data_dir: Path,
    workload: Workload,
    *,
    clients: int,
    batch: int,
    timeout: float,
    env: dict[str, str],
    accept_only: bool = False,
    segments: int = 0,
    scoring: bool = False,
    lifecycle: bool = False,
) -> Result:
    reset(url)
    db = Database.from_url(url)
    inbox = open_inbox(db, url)
    if accept_only:
        env = {**env, "SODATE_EVENT_PROCESSOR_ENABLED": "false"}
    try:
        with Server(url, data_dir, env) as server:
            configure(server, segments=segments, scoring=scoring, lifecycle=lifecycle)
            result = _send_and_wait(
                server, db, inbox, url, workload, clients, batch, timeout, accept_only=accept_only
            )
        if not accept_only:
            result.raw_insert_per_second = raw_insert_rate(db, batch)
        return result
    finally:
        if inbox is not db:
            inbox.dispose()
        db.dispose()


def configure(
    server: Server,
    *,
    segments: int,
    scoring: bool,
    lifecycle: bool,
    more_segments: Sequence[tuple[str, dict[str, Any]]] = (),
    timeout: float = 120,
) -> None:
    """Save the live segments (`segment_definitions`, then `more_segments`), scoring model and
    lifecycle rules through the API; `timeout` is each request's (a segment's members are
    computed as it is saved)."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base, timeout=timeout, headers=headers) as http:
        for key, condition in [*segment_definitions(segments), *more_segments]:
            response = http.put(
                f"/api/v1/segments/{key}", json={"name": key, "condition": condition}
            )
            response.raise_for_status()
        if scoring:
            http.put("/api/v1/scoring-models/bench", json=SCORING_MODEL).raise_for_status()
        if lifecycle:
            http.put("/api/v1/lifecycle", json=lifecycle_rules(scoring)).raise_for_status()


def _send_and_wait(
    server: Server,
    db: Database,
    inbox: Database,
    url: str,
    workload: Workload,
    clients: int,
    batch: int,
    deadline_seconds: float,
    *,
    accept_only: bool,
) -> Result:
    auth = "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()
    requests = iter([(post_request(body, auth), count) for body, count in workload.bodies])
    lock = threading.Lock()
    errors: list[BaseException] = []
    finished: list[float] = []

    def next_request() -> tuple[bytes, int] | None:
        with lock:
            return next(requests, None)

    def client() -> None:
        try:
            with KeepAliveConnection("127.0.0.1", server.port) as connection:
                while not errors and (item := next_request()) is not None:
                    request, count = item
                    status, body = connection.send(request)
                    if status != 200:
                        raise RuntimeError(f"/v1/batch answered {status}: {body[:300]!r}")
                    answer = json.loads(body)
                    if answer["accepted"] != count:
                        rejected = answer["rejected"][:3]
                        raise RuntimeError(f"{answer['accepted']} of {count} accepted: {rejected}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            with lock:
                finished.append(time.perf_counter())

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    deadline = started + deadline_seconds
    for thread in threads:
        thread.start()
    peak = 0
    backlog_at_accept_end: int | None = None
    accept_end: float | None = None
    while True:
        time.sleep(0.05)
        now = time.perf_counter()
        if errors:
            raise SystemExit(f"a client failed: {errors[0]}\n{server.server_log_tail()}")
        if now > deadline:
            raise SystemExit(f"not done after {deadline_seconds:.0f} s (--timeout)")
        assert server.process is not None
        if server.process.poll() is not None:
            raise SystemExit(f"sodate up exited\n{server.server_log_tail()}")
        all_answered = len(finished) == clients
        # Read after checking the clients: a request answered meanwhile is then counted too.
        backlog = scalar(inbox, INBOX_COUNT)
        peak = max(peak, backlog)
        if accept_end is None and all_answered:
            accept_end = max(finished)
            backlog_at_accept_end = backlog
        if accept_end is not None and (accept_only or backlog == 0):
            done = time.perf_counter()
            break
    cpu_after = server.cpu_seconds()
    cpu = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    if accept_only:
        if backlog_at_accept_end != workload.events:
            raise SystemExit(
                f"{backlog_at_accept_end} messages in the inbox, {workload.events} sent"
            )
    elif (processed := scalar(db, EVENTS_COUNT)) != workload.events:
        raise SystemExit(f"{processed} events stored, {workload.events} sent")
    return Result(
        database=dialect_of(url),
        mode="http-accept-only" if accept_only else "http",
        events=workload.events,
        batch=batch,
        clients=clients,
        accept_seconds=accept_end - started,
        processed_seconds=None if accept_only else done - started,
        cpu_seconds=cpu,
        backlog_at_accept_end=backlog_at_accept_end,
        peak_backlog=peak,
    )


def post_request(body: bytes, authorization: str) -> bytes:
    head = (
        "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {authorization}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class KeepAliveConnection:
    """One HTTP/1.1 connection that sends requests built beforehand and reads each answer.

    The load generator shares the machine's two cores with the server, so it should cost as
    little as it can, as wrk does: httpx spent about 5 µs of CPU an event (2.5 ms a request of
    500 messages), this a few hundredths of that."""

    def __init__(self, host: str, port: int) -> None:
        self.socket = socket.create_connection((host, port))
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def __enter__(self) -> KeepAliveConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.socket.close()

    def send(self, request: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to one request (answers carry Content-Length)."""
        self.socket.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines[1:]
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += self._read()
        self.buffer = rest[length:]
        return status, rest[:length]

    def _read(self) -> bytes:
        data = self.socket.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data


def run_inprocess(
    url: str,
    data_dir: Path,
    workload: Workload,
    *,
    batch: int,
    event_batch_size: int | None,
    profile: bool,
    top: int,
    timeout: float,
    segments: int = 0,
    scoring: bool = False,
    lifecycle: bool = False,
    history: Workload | None = None,
) -> tuple[Result, list[str]]:
    from sodate.definitions import put_scoring_model
    from sodate.events.ingest import ingest
    from sodate.events.ratelimit import MessageRateLimiter
    from sodate.lifecycle import service as lifecycle_service
    from sodate.lifecycle.schemas import LifecycleRulesIn
    from sodate.pipeline import process_pending
    from sodate.scoring.schemas import ScoringModelIn
    from sodate.segments import service as segment_service
    from sodate.segments.schemas import SegmentIn
    from sodate.workspaces import service as workspaces
    from sodate.workspaces.schemas import WorkspaceCreate

    reset(url)
    data_dir.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, Any] = {"tracking_rate_limit": 0}
    if event_batch_size:
        overrides["event_batch_size"] = event_batch_size
    runtime = Runtime.create(
        Settings(database_url=url, secret_key=SECRET, data_dir=data_dir, **overrides)
    )
    reports: list[str] = []
    # As `sodate up` does (its `wal-checkpointer`): the logs are copied into the database and
    # the inbox on threads of their own, not by the commit that takes one past its limit
    # (nothing on PostgreSQL, whose inbox is the database's own table).
    interval = runtime.settings.sqlite_checkpoint_interval_seconds
    try:
        with (
            runtime.db.checkpointing(interval),
            runtime.inbox.checkpointing(interval),
        ):
            with runtime.db.transaction() as session:
                created = workspaces.create_workspace_with_keys(
                    session, WorkspaceCreate(name="Bench"), now=runtime.clock.now()
                )
            auth = "Basic " + base64.b64encode(f"{created.write_key.key}:".encode()).decode()
            limiter = MessageRateLimiter(0, 1)
            size = runtime.settings.event_batch_size
            stored = 0
            if history is not None:  # processed before the segments and rules exist, not timed
                for body, _count in history.bodies:
                    ingest(runtime, limiter, _request(body, auth))
                while process_pending(runtime, batch_size=size):
                    pass
                stored = history.events
            with runtime.db.transaction() as session:
                for key, condition in segment_definitions(segments):
                    segment_service.put_segment(
                        session,
                        created.workspace.id,
                        key,
                        SegmentIn.model_validate({"name": key, "condition": condition}),
                        now=runtime.clock.now(),
                    )
                if scoring:
                    put_scoring_model(
                        session,
                        created.workspace.id,
                        "bench",
                        ScoringModelIn.model_validate(SCORING_MODEL),
                        now=runtime.clock.now(),
                    )
                if lifecycle:
                    lifecycle_service.put_rules(
                        session,
                        created.workspace.id,
                        LifecycleRulesIn.model_validate(lifecycle_rules(scoring)),
                        now=runtime.clock.now(),
                    )
            requests = [_request(body, auth) for body, _count in workload.bodies]

            deadline = time.monotonic() + timeout

            def in_time() -> None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"not done after {timeout:.0f} s (--timeout)")

            def accept_all() -> None:
                for request in requests:
                    ingest(runtime, limiter, request)
                    in_time()

            def process_all() -> None:
                while process_pending(runtime, batch_size=size):
                    in_time()

            cpu_before = time.process_time()
            accept_seconds = _timed(accept_all, "accept (ingest)", profile, top, reports)
            accept_cpu = time.process_time() - cpu_before
            with _step_timer() as steps:
                process_seconds = _timed(
                    process_all, "process (process_pending)", profile, top, reports
                )
            cpu = time.process_time() - cpu_before
            processed = scalar(runtime.db, EVENTS_COUNT) - stored
            if processed != workload.events:
                raise SystemExit(f"{processed} events stored, {workload.events} sent")
            result = Result(
                database=dialect_of(url),
                mode="inprocess",
                events=workload.events,
                batch=batch,
                clients=1,
                accept_seconds=accept_seconds,
                processed_seconds=accept_seconds + process_seconds,
                process_seconds=process_seconds,
                cpu_seconds=cpu,
                accept_cpu_seconds=accept_cpu,
                backlog_at_accept_end=workload.events,
                peak_backlog=workload.events,
                profiled=profile,
                steps=dict(steps),
            )
            result.steps["(rest: parse payloads, commit)"] = process_seconds - sum(steps.values())
            result.raw_insert_per_second = raw_insert_rate(runtime.db, batch)
            return result, reports
    finally:
        runtime.close()


def _request(body: bytes, authorization: str) -> Any:
    from sodate.events.ingest import TrackingRequest

    return TrackingRequest(
        body=body,
        content_encoding=None,
        authorization=authorization,
        write_key_header=None,
        message_type=None,
    )


@contextmanager
def _step_timer() -> Iterator[dict[str, float]]:
    """Time each pipeline step and each inbox statement of `process_pending`, in place.

    Replaces `sodate.pipeline.STEPS` and four functions of `sodate.events.service` with
    timed wrappers for the duration of the block (this process only; src/ is unchanged).
    """
    from sodate import pipeline
    from sodate.events import service as event_log

    spent: dict[str, float] = {}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    steps = pipeline.STEPS
    inbox = {name: getattr(event_log, name) for name in INBOX_FUNCTIONS}
    pipeline.STEPS = tuple(timed(f"step {getattr(s, '__name__', s)}", s) for s in steps)
    for name, function in inbox.items():
        setattr(event_log, name, timed(name, function))
    try:
        yield spent
    finally:
        pipeline.STEPS = steps
        for name, function in inbox.items():
            setattr(event_log, name, function)


INBOX_FUNCTIONS = ("oldest_pending_workspace", "take_inbox", "stored_message_ids", "delete_inbox")


def _timed(work: Any, label: str, profile: bool, top: int, reports: list[str]) -> float:
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.runcall(work)
    else:
        work()
    elapsed = time.perf_counter() - started
    if profiler is not None:
        for title, order, restriction in (
            ("cumulative time", "cumulative", ()),
            ("cumulative time, sodate's own functions", "cumulative", (r"sodate/",)),
            ("internal time (tottime)", "tottime", ()),
        ):
            stream = io.StringIO()
            stats = pstats.Stats(profiler, stream=stream)
            stats.sort_stats(order).print_stats(*restriction, top)
            reports.append(
                f"--- cProfile: {label}, {elapsed:.2f} s (profiled), top {top} by {title}\n"
                + _trim_profile(stream.getvalue())
            )
    return elapsed


def _trim_profile(text: str) -> str:
    """pstats output without its preamble, paths relative to the venv or the repository."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    prefixes = sorted(
        {str(ROOT / "src") + "/", str(ROOT) + "/", *(p + "/" for p in sys.path if p)},
        key=len,
        reverse=True,
    )
    out = []
    for line in lines[start:]:
        for prefix in prefixes:
            line = line.replace(prefix, "")
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


def raw_insert_rate(db: Database, batch: int) -> float:
    """Insert the stored events again (new message ids) with the pipeline's own event insert
    alone, one transaction per batch: the storage limit the pipeline is measured against."""
    with db.read() as session:
        stored = session.execute(
            sa.select(*(c for c in EVENTS.c if c.name != "id")).order_by(EVENTS.c.id)
        ).all()
    rows = [
        (
            r.workspace_id,
            EventRow(
                contact_id=r.contact_id,
                message_id="raw-" + r.message_id,
                type=r.type,
                name=r.name,
                properties=DriverValues.json(r.properties),
                context=DriverValues.json(r.context),
                timestamp=r.timestamp,
                received_at=r.received_at,
            ),
        )
        for r in stored
    ]
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        with db.transaction() as session:
            insert_events(session, part[0][0], [row for _workspace, row in part])
    return len(rows) / (time.perf_counter() - started)


# --- output -------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    header = (
        "database",
        "mode",
        "events",
        "accept/s",
        "processed/s",
        "process-only/s",
        "backlog@accepted",
        "raw insert/s",
        "processed/raw",
        "CPU µs/event",
    )
    rows = []
    for r in results:
        d = r.as_dict()
        rows.append(
            (
                r.database,
                r.mode + (" (profiled)" if r.profiled else ""),
                f"{r.events:,}",
                f"{d['accept_per_second']:,}",
                f"{d['processed_per_second']:,}" if d["processed_per_second"] else "-",
                f"{d['process_only_per_second']:,}" if d["process_only_per_second"] else "-",
                f"{d['backlog_at_accept_end']:,}"
                if d["backlog_at_accept_end"] is not None
                else "-",
                f"{d['raw_insert_per_second']:,}" if d["raw_insert_per_second"] else "-",
                f"{d['processed_vs_raw']:.1%}" if d["processed_vs_raw"] else "-",
                f"{d['cpu_us_per_event']:,.0f}" if d["cpu_us_per_event"] else "-",
            )
        )
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(
            str(v).rjust(w) if i > 1 else str(v).ljust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def reproduce_command(argv: list[str], url: str | None) -> str:
    python = (
        os.path.relpath(sys.executable, ROOT)
        if sys.executable.startswith(str(ROOT))
        else sys.executable
    )
    script = os.path.relpath(Path(argv[0]).resolve(), ROOT)
    args = list(argv[1:])
    pg = os.environ.get("SODATE_TEST_POSTGRES_URL")
    if url and pg and url == pg:
        args = [a if a != url else "$SODATE_TEST_POSTGRES_URL" for a in args]
        inner = " ".join(
            shlex.quote(a) if a != "$SODATE_TEST_POSTGRES_URL" else '"$SODATE_TEST_POSTGRES_URL"'
            for a in [python, script, *args]
        )
        return f"scripts/with-test-postgres sh -c {shlex.quote(inner)}"
    return shlex.join([python, script, *args])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--known", type=float, default=0.3, help="share of contacts who identify")
    parser.add_argument("--batch", type=int, default=500, help="messages per /v1/batch request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=("http", "http-accept-only", "inprocess"),
        default=["http"],
        help="http-accept-only: the server's event processor is off; accepting alone is timed",
    )
    parser.add_argument(
        "--event-batch-size", type=int, help="SODATE_EVENT_BATCH_SIZE (default: the server's)"
    )
    parser.add_argument("--database-url", default=os.environ.get("SODATE_BENCH_DATABASE_URL"))
    parser.add_argument(
        "--timeout", type=float, default=900, help="give up after this many seconds per run"
    )
    parser.add_argument("--profile", action="store_true", help="run inprocess under cProfile")
    parser.add_argument("--top", type=int, default=15, help="functions listed by --profile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--segments", type=int, default=0, help="live dynamic segments kept up to date"
    )
    parser.add_argument(
        "--scoring", action="store_true", help="a live scoring model of 10 rules (SCORING_MODEL)"
    )
    parser.add_argument(
        "--lifecycle", action="store_true", help="live lifecycle stage rules (LIFECYCLE_RULES)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="inprocess: events from the same contacts processed first, untimed, before the"
        " segments and rules are saved (real-time work should not grow with history)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.profile and "inprocess" not in args.mode:
        parser.error("--profile applies to --mode inprocess")
    if args.history and args.mode != ["inprocess"]:
        parser.error("--history applies to --mode inprocess alone")
    if args.history % args.batch:
        parser.error("--history must be a multiple of --batch")

    before, workload = build_workload(
        args.events,
        args.contacts,
        args.batch,
        known=args.known,
        seed=args.seed,
        history=args.history,
    )
    history = before if args.history else None
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(workload.counts.items()))
    size = sum(len(body) for body, _n in workload.bodies) / workload.events
    info = (
        f"workload: {workload.events:,} events from {args.contacts:,} contacts ({mix}), "
        f"{len(workload.bodies)} batches of {args.batch}, {size:.0f} bytes/message, "
        f"{args.segments} live segments, {'10 scoring rules' if args.scoring else 'no scoring'}, "
        f"{'lifecycle rules' if args.lifecycle else 'no lifecycle rules'}"
        + (f", after {args.history:,} events of history" if args.history else "")
    )
    results: list[Result] = []
    reports: list[str] = []
    env = {"SODATE_EVENT_BATCH_SIZE": str(args.event_batch_size)} if args.event_batch_size else {}
    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as tmp:
        for mode in args.mode:
            data_dir = Path(tmp) / mode
            url = args.database_url or f"sqlite:///{data_dir}/bench.db"
            data_dir.mkdir(parents=True, exist_ok=True)
            if mode in ("http", "http-accept-only"):
                results.append(
                    run_http(
                        url,
                        data_dir,
                        workload,
                        clients=args.clients,
                        batch=args.batch,
                        timeout=args.timeout,
                        env=env,
                        accept_only=mode == "http-accept-only",
                        segments=args.segments,
                        scoring=args.scoring,
                        lifecycle=args.lifecycle,
                    )
                )
            else:
                result, texts = run_inprocess(
                    url,
                    data_dir,
                    workload,
                    batch=args.batch,
                    event_batch_size=args.event_batch_size,
                    profile=args.profile,
                    top=args.top,
                    timeout=args.timeout,
                    segments=args.segments,
                    scoring=args.scoring,
                    lifecycle=args.lifecycle,
                    history=history,
                )
                results.append(result)
                reports.extend(texts)
            if not args.json:
                print(f"done: {mode}", file=sys.stderr, flush=True)
    command = reproduce_command(sys.argv, args.database_url)
    if args.json:
        print(
            json.dumps(
                {
                    "workload": info,
                    "command": command,
                    "results": [r.as_dict() for r in results],
                    "profiles": reports,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    print(info)
    print(table(results))
    for result in results:
        if result.steps and result.process_seconds:
            print()
            if result.cpu_seconds and result.accept_cpu_seconds:
                accept_cpu = result.accept_cpu_seconds / result.events * 1e6
                process_cpu = (result.cpu_seconds - result.accept_cpu_seconds) / result.events * 1e6
                print(
                    f"in-process CPU ({result.database}): accept {accept_cpu:.0f} µs/event, "
                    f"process {process_cpu:.0f} µs/event"
                )
            print(
                f"where process_pending's {result.process_seconds:.2f} s went ({result.database}):"
            )
            for name, seconds in sorted(result.steps.items(), key=lambda kv: -kv[1]):
                share = seconds / result.process_seconds
                per_event = seconds / result.events * 1e6
                print(f"  {name:38} {seconds:7.2f} s  {share:6.1%}  {per_event:6.1f} µs/event")
    for report in reports:
        print()
        print(report, end="")
    print()
    print(f"reproduce: {command}")


if __name__ == "__main__":
    main()
