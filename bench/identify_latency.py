"""Latency from an accepted identify to the profile visible through the REST API, under load.

    python bench/identify_latency.py --rate 1000 --identify-rate 10 --duration 45 [--json]
    python bench/identify_latency.py ... --database-url URL   (e.g. scripts/with-test-postgres)

A real `sodate up` (subprocess, 127.0.0.1 only) receives a steady, open-loop load of `--rate`
events per second: `--identify-rate` of them are single `POST /v1/identify` calls, each with a
fresh userId and email; the rest are page and track events of a pool of `--contacts` contacts,
sent as a /v1/batch request every `--tick` seconds. Sends are scheduled on the clock, not on
the previous answer, so a slow server does not slow the load down.

For each identify the clock starts at its 200 and stops at the first
`GET /api/v1/contacts?user_id=…` (admin key) that returns the contact with its email; polls
start at once and repeat every `--poll-interval` (so a figure includes up to one interval of
polling granularity), for at most `--poll-timeout` seconds (then the identify counts as timed
out). Identifies of the first `--warmup` seconds are not counted. The run stops by itself.

With `--segments N` (and `--scoring`), the segments and scoring model of `bench/ingest.py`
are live, and so is one more segment that the measured identifies alone enter
(`PROBE_SEGMENT`): an identify is then visible once its contact shows in that segment, which
is DESIGN's "event accepted → segment updated" (`python bench/identify_latency.py --rate 2000
--segments 50 --scoring`).

Each poll is a real API request, and so is load on the server: at 10 ms a slow answer costs
many polls. The table gives the server's and the load generator's CPU (in cores), so a
saturated server (about 1.0: one Python process) or a late load generator shows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, reset  # the repository root is on the path from the line above
from bench.ingest import (
    EVENTS_COUNT,
    FAMILY,
    GIVEN,
    INBOX_COUNT,
    Messages,
    Server,
    configure,
    dialect_of,
    reproduce_command,
    scalar,
)
from sodate.db.engine import Database
from sodate.events.inbox import open_inbox


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    """Seconds from an identify's 200 to the contact seen through the API (measured ones)."""
    timeouts: int = 0
    identifies_started: int = 0
    polls: int = 0
    identify_post: list[float] = field(default_factory=list)
    batch_post: list[float] = field(default_factory=list)
    send_lag: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    accepted_events: int = 0
    measured_events: int = 0
    peak_backlog: int = 0
    backlog_at_end: int = 0
    window_seconds: float = 0.0
    server_cores: float | None = None
    """The server process's CPU time over the run's wall time (1.0 = one core busy)."""
    client_cores: float | None = None


class Load:
    """The pre-built background batches and the identify messages, with their send times."""

    def __init__(self, args: argparse.Namespace) -> None:
        total = args.warmup + args.duration
        background_rate = args.rate - args.identify_rate
        if background_rate < 0:
            raise SystemExit("--identify-rate cannot exceed --rate")
        messages = Messages(args.contacts, known=0.3, seed=args.seed, prefix="bg-")
        self.schedule: list[tuple[float, str, Any]] = []
        carry = 0.0
        ticks = round(total / args.tick)
        for tick in range(ticks):
            carry += background_rate * args.tick
            count = int(carry)
            carry -= count
            if count:
                document = {
                    "batch": [messages.next() for _ in range(count)],
                    "sentAt": datetime.now(UTC).isoformat(),
                }
                body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
                self.schedule.append((tick * args.tick, "batch", (body, count)))
        run = f"{random.Random(args.seed).getrandbits(32):08x}"
        r = random.Random(args.seed + 1)
        for k in range(int(total * args.identify_rate)):
            # Offset by half a tick so an identify rarely lands on the same instant as a batch.
            at = k / args.identify_rate + args.tick / 2
            message = {
                "userId": f"lat-{run}-{k}",
                "anonymousId": f"lat-anon-{run}-{k}",
                "messageId": f"lat-{run}-{k}",
                "traits": {
                    "email": f"lat-{run}-{k}@example.jp",
                    "firstName": r.choice(GIVEN),
                    "lastName": r.choice(FAMILY),
                    "plan": "trial",
                },
            }
            self.schedule.append((at, "identify", message))
        self.schedule.sort(key=lambda item: item[0])


PROBE_SEGMENT = "latency-probe"
PROBE_CONDITION = {"attr": "plan", "op": "eq", "value": "trial"}
"""With `--segments`, a live segment that the measured identifies alone enter (their plan is
"trial"): an identify counts as visible once its contact shows in it."""


class HttpError(Exception):
    pass


KEEP_IDLE_SECONDS = 3.0
"""Below uvicorn's keep-alive timeout (5 s), so a reused connection is rarely a closed one."""


class Connections:
    """A minimal HTTP/1.1 keep-alive client for the local server, O(1) per request.

    httpx's async pool scans every connection for each request it places; with a few hundred
    requests in flight against a slow server that costs the load generator half a core and
    makes it send late, which would hide exactly what this benchmark looks for.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        message = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n"
        ).encode() + body
        for attempt in range(2):
            streams = self._take() if attempt == 0 else None
            reused = streams is not None
            if streams is None:
                streams = await self._open()
            try:
                return await asyncio.wait_for(self._exchange(streams, message), self.timeout)
            except TimeoutError:
                streams[1].close()
                raise HttpError(f"{method} {target}: no answer in {self.timeout:.0f} s") from None
            except (ConnectionError, asyncio.IncompleteReadError, HttpError) as exc:
                streams[1].close()
                # The server closes idle keep-alive connections: a request that failed on a
                # reused one is sent again on a new one (safe: messages are deduplicated by
                # messageId, and GET changes nothing).
                if not reused:
                    raise HttpError(f"{method} {target}: {exc!r}") from None
            except BaseException:
                streams[1].close()
                raise
        raise AssertionError("unreachable")

    def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The most recently used idle connection, dropping any idle for too long."""
        now = time.monotonic()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < KEEP_IDLE_SECONDS:
                return reader, writer
            writer.close()
        return None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    async def _exchange(
        self, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], message: bytes
    ) -> tuple[int, bytes]:
        reader, writer = streams
        writer.write(message)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise HttpError("closed before the answer")
        status = int(status_line.split()[1])
        length, keep = 0, True
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
            elif name == "transfer-encoding":
                raise HttpError(f"unsupported Transfer-Encoding {value.strip()}")
        data = await reader.readexactly(length) if length else b""
        if keep:
            self.idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return status, data

    def close(self) -> None:
        for _reader, writer, _since in self.idle:
            writer.close()
        self.idle.clear()


async def drive(server: Server, load: Load, args: argparse.Namespace, stats: Stats) -> None:
    write = "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()
    write_headers = {"Authorization": write, "Content-Type": "application/json"}
    admin_headers = {"Authorization": f"Bearer {server.admin_key}"}
    loop = asyncio.get_running_loop()
    http = Connections("127.0.0.1", server.port, timeout=30)
    try:

        async def send_batch(body: bytes, count: int, measured: bool) -> None:
            started = loop.time()
            try:
                status, answer = await http.request("POST", "/v1/batch", write_headers, body)
            except HttpError as exc:
                stats.errors.append(f"batch: {exc}")
                return
            if status != 200:
                stats.errors.append(f"batch: {status} {answer[:200]!r}")
                return
            stats.accepted_events += count
            if measured:
                stats.measured_events += count
                stats.batch_post.append(loop.time() - started)

        async def identify(message: dict[str, Any], measured: bool) -> None:
            if measured:
                stats.identifies_started += 1
            started = loop.time()
            message = {**message, "timestamp": datetime.now(UTC).isoformat()}
            body = json.dumps(message).encode()
            try:
                status, answer = await http.request("POST", "/v1/identify", write_headers, body)
            except HttpError as exc:
                stats.errors.append(f"identify: {exc}")
                return
            accepted = loop.time()
            if status != 200:
                stats.errors.append(f"identify: {status} {answer[:200]!r}")
                return
            stats.accepted_events += 1
            if measured:
                stats.measured_events += 1
                stats.identify_post.append(accepted - started)
            target = "/api/v1/contacts?" + urlencode({"user_id": message["userId"]})
            email = message["traits"]["email"]
            deadline = accepted + args.poll_timeout
            while True:
                polled = loop.time()
                try:
                    status, answer = await http.request("GET", target, admin_headers)
                except HttpError as exc:
                    stats.errors.append(f"poll: {exc}")
                    return
                stats.polls += 1
                if status != 200:
                    stats.errors.append(f"poll: {status} {answer[:200]!r}")
                    return
                items = json.loads(answer)["items"]
                if (
                    items
                    and items[0].get("email") == email
                    and (not args.segments or PROBE_SEGMENT in items[0]["segments"])
                ):
                    if measured:
                        stats.latencies.append(loop.time() - accepted)
                    return
                if loop.time() >= deadline:
                    if measured:
                        stats.timeouts += 1
                    return
                await asyncio.sleep(max(0.0, polled + args.poll_interval - loop.time()))

        tasks: set[asyncio.Task[None]] = set()
        start = loop.time() + 0.2
        measure_from = args.warmup
        for offset, kind, payload in load.schedule:
            at = start + offset
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            measured = offset >= measure_from
            if measured:
                stats.send_lag.append(loop.time() - at)
            if kind == "batch":
                body, count = payload
                coroutine = send_batch(body, count, measured)
            else:
                coroutine = identify(payload, measured)
            task = asyncio.create_task(coroutine)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if len(stats.errors) > 20:
                break
        stats.window_seconds = loop.time() - (start + measure_from)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=args.poll_timeout + 30)
            for task in pending:
                task.cancel()
            if pending:
                stats.errors.append(f"{len(pending)} requests still running at the end")
    finally:
        http.close()


def watch_backlog(inbox: Database, stats: Stats, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            stats.peak_backlog = max(stats.peak_backlog, scalar(inbox, INBOX_COUNT))
        except Exception as exc:  # a failed sample is only a missing sample
            stats.errors.append(f"backlog sample: {exc!r}")


def summary(stats: Stats, args: argparse.Namespace, database: str) -> dict[str, Any]:
    ms = 1000.0

    def p(values: list[float], q: float) -> float | str | None:
        """Milliseconds; a timed-out identify ranks last, shown as "timeout"."""
        value = percentile(values, q)
        if math.isnan(value):
            return None
        return "timeout" if math.isinf(value) else round(value * ms, 1)

    unfinished = max(0, stats.identifies_started - len(stats.latencies) - stats.timeouts)
    ranked = stats.latencies + [math.inf] * (stats.timeouts + unfinished)
    measured = len(ranked)
    return {
        "database": database,
        "target_rate": args.rate,
        "achieved_rate": round(stats.measured_events / stats.window_seconds)
        if stats.window_seconds
        else None,
        "identify_rate": args.identify_rate,
        "duration_seconds": args.duration,
        "identifies_measured": measured,
        "visible_ms": {
            "p50": p(ranked, 0.50),
            "p90": p(ranked, 0.90),
            "p99": p(ranked, 0.99),
            "max": p(ranked, 1.0),
        },
        "timeouts": stats.timeouts,
        "unfinished": unfinished,
        "polls_per_identify": round(stats.polls / measured, 1) if measured else None,
        "identify_post_ms": {
            "p50": p(stats.identify_post, 0.5),
            "p99": p(stats.identify_post, 0.99),
        },
        "batch_post_ms": {"p50": p(stats.batch_post, 0.5), "p99": p(stats.batch_post, 0.99)},
        "send_lag_ms": {"p99": p(stats.send_lag, 0.99), "max": p(stats.send_lag, 1.0)},
        "server_cpu_cores": _round(stats.server_cores),
        "load_generator_cpu_cores": _round(stats.client_cores),
        "peak_inbox_backlog": stats.peak_backlog,
        "inbox_backlog_at_end": stats.backlog_at_end,
        "errors": stats.errors[:10],
    }


def warnings(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    found = []
    lag = result["send_lag_ms"]["p99"]
    if isinstance(lag, float) and lag > 100:
        found.append(
            f"the load generator sent late (p99 {lag:.0f} ms): the machine is short of CPU, "
            "so the load was not steady"
        )
    if result["inbox_backlog_at_end"] > args.rate:
        found.append(
            f"{result['inbox_backlog_at_end']:,} messages still waited in the inbox at the end: "
            f"the server did not keep up with {args.rate:,.0f} events/s"
        )
    return found


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms(value: float | str | None) -> str:
    return f"{value:,.1f} ms" if isinstance(value, float) else str(value)


def print_summary(result: dict[str, Any]) -> None:
    v, ip, bp, lag = (
        result["visible_ms"],
        result["identify_post_ms"],
        result["batch_post_ms"],
        result["send_lag_ms"],
    )
    rows = [
        ("database", result["database"]),
        (
            "load (target / achieved)",
            f"{result['target_rate']:,} / {result['achieved_rate']:,} events/s",
        ),
        (
            "identifies measured",
            f"{result['identifies_measured']:,} "
            f"({result['identify_rate']}/s for {result['duration_seconds']} s)",
        ),
        ("identify 200 → visible p50", _ms(v["p50"])),
        ("identify 200 → visible p90", _ms(v["p90"])),
        ("identify 200 → visible p99", _ms(v["p99"])),
        ("identify 200 → visible max", _ms(v["max"])),
        (
            "timed out / unfinished",
            f"{result['timeouts']} / {result['unfinished']} "
            f"(poll timeout {result.get('poll_timeout')} s; both rank as slowest)",
        ),
        ("polls per identify", str(result["polls_per_identify"])),
        ("POST /v1/identify p50 / p99", f"{ip['p50']} / {ip['p99']} ms"),
        ("POST /v1/batch p50 / p99", f"{bp['p50']} / {bp['p99']} ms"),
        ("send lag p99 / max", f"{lag['p99']} / {lag['max']} ms"),
        (
            "CPU: server / load generator",
            f"{result['server_cpu_cores']} / {result['load_generator_cpu_cores']} cores",
        ),
        (
            "inbox backlog peak / at end",
            f"{result['peak_inbox_backlog']:,} / {result['inbox_backlog_at_end']:,}",
        ),
    ]
    width = max(len(name) for name, _value in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    for error in result["errors"]:
        print(f"error: {error}")
    for warning in result["warnings"]:
        print(f"warning: {warning}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000, help="events per second in all")
    parser.add_argument("--identify-rate", type=float, default=10, help="measured identifies/s")
    parser.add_argument("--duration", type=float, default=45, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds not measured first")
    parser.add_argument("--tick", type=float, default=0.1, help="seconds between batches")
    parser.add_argument("--contacts", type=int, default=10_000, help="background contacts")
    parser.add_argument("--poll-interval", type=float, default=0.01)
    parser.add_argument("--poll-timeout", type=float, default=10)
    parser.add_argument("--database-url", default=os.environ.get("SODATE_BENCH_DATABASE_URL"))
    parser.add_argument(
        "--event-batch-size", type=int, help="SODATE_EVENT_BATCH_SIZE (default: the server's)"
    )
    parser.add_argument(
        "--segments",
        type=int,
        default=0,
        help="live segments of bench/ingest.py, and one the measured identifies enter",
    )
    parser.add_argument("--scoring", action="store_true", help="bench/ingest.py's scoring model")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    load = Load(args)
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        reset(url)
        db = Database.from_url(url)
        inbox = open_inbox(db, url)
        stop = threading.Event()
        watcher = threading.Thread(target=watch_backlog, args=(inbox, stats, stop), daemon=True)
        try:
            env = (
                {"SODATE_EVENT_BATCH_SIZE": str(args.event_batch_size)}
                if args.event_batch_size
                else {}
            )
            with Server(url, Path(tmp), env) as server:
                configure(
                    server,
                    segments=args.segments,
                    scoring=args.scoring,
                    lifecycle=False,
                    more_segments=[(PROBE_SEGMENT, PROBE_CONDITION)] if args.segments else [],
                )
                watcher.start()
                server_cpu, client_cpu, wall = (
                    server.cpu_seconds(),
                    time.process_time(),
                    time.time(),
                )
                asyncio.run(drive(server, load, args, stats))
                wall = time.time() - wall
                stats.client_cores = (time.process_time() - client_cpu) / wall
                if server_cpu is not None and (spent := server.cpu_seconds()) is not None:
                    stats.server_cores = (spent - server_cpu) / wall
                stop.set()
                watcher.join(5)
                stats.backlog_at_end = scalar(inbox, INBOX_COUNT)
                stored = scalar(db, EVENTS_COUNT)
        finally:
            stop.set()
            if inbox is not db:
                inbox.dispose()
            db.dispose()
    result = summary(stats, args, dialect_of(url))
    result["poll_timeout"] = args.poll_timeout
    result["warnings"] = warnings(result, args)
    result["events_stored_at_end"] = stored
    result["command"] = reproduce_command(sys.argv, args.database_url)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    print_summary(result)
    print(f"reproduce: {result['command']}")


if __name__ == "__main__":
    main()
