"""Tracking ingest at a steady offered rate: does the event processor keep up, and how late?

    python bench/ingest_sustained.py --rate 20000 --duration 30 --segments 50 --scoring [--json]
    python bench/ingest_sustained.py ... --database-url URL   (e.g. scripts/with-test-postgres)

`bench/ingest.py` sends its events as fast as the server accepts them and times until the
last is processed: a burst, whose accepting takes a core from the processor and whose last
batch is waited for alone. This sends the same workload (`bench.ingest.Messages`, the same
segments and scoring model) at `--rate` events per second, open loop: /v1/batch requests of
`--batch` messages are scheduled on the clock, not on the previous answer, from `--clients`
keep-alive connections, for `--warmup` + `--duration` seconds.

Every `--sample` seconds it reads the inbox's backlog (messages accepted and not yet
processed) beside the messages answered so far, so processed = answered − backlog (low by at
most the requests in flight). Over the measured window (after the warm-up, until the last
answer) it reports the rates accepted and processed, the backlog's peak and its mean in the
window's first and last thirds (a processor that keeps up holds it level; one that does not
lets it grow), and how long after being answered a message was processed (from the two
cumulative curves, to a sample's resolution), then the drain time after the last answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, reset  # the repository root is on the path from the line above
from bench.ingest import (
    EVENTS_COUNT,
    INBOX_COUNT,
    KeepAliveConnection,
    Server,
    build_workload,
    configure,
    dialect_of,
    post_request,
    reproduce_command,
    scalar,
)
from sodate.db.engine import Database
from sodate.events.inbox import open_inbox


@dataclass
class Sample:
    at: float
    """Seconds since the first scheduled send."""
    answered: int
    backlog: int

    @property
    def processed(self) -> int:
        return self.answered - self.backlog


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    """Seconds each request was sent after its scheduled time."""
    last_answer: float = 0.0
    drained: float = 0.0
    cpu_seconds: float | None = None
    events: int = 0


def send_steadily(
    server: Server,
    inbox: Database,
    bodies: list[tuple[bytes, int]],
    *,
    rate: float,
    clients: int,
    sample_seconds: float,
    timeout: float,
) -> Run:
    auth = "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()
    schedule: list[tuple[float, bytes, int]] = []
    sent = 0
    for body, count in bodies:
        schedule.append((sent / rate, post_request(body, auth), count))
        sent += count
    lock = threading.Lock()
    run = Run(events=sent)
    answered = 0
    position = 0
    errors: list[BaseException] = []
    started = time.perf_counter() + 0.2

    def client() -> None:
        nonlocal answered, position
        try:
            with KeepAliveConnection("127.0.0.1", server.port) as connection:
                while not errors:
                    with lock:
                        if position == len(schedule):
                            return
                        due, request, count = schedule[position]
                        position += 1
                    wait = started + due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    sent_at = time.perf_counter()
                    status, body = connection.send(request)
                    if status != 200 or json.loads(body)["accepted"] != count:
                        raise RuntimeError(f"/v1/batch answered {status}: {body[:300]!r}")
                    done = time.perf_counter()
                    with lock:
                        answered += count
                        run.lateness.append(sent_at - started - due)
                        run.last_answer = max(run.last_answer, done - started)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    cpu_before = server.cpu_seconds()
    for thread in threads:
        thread.start()
    while True:
        time.sleep(sample_seconds)
        if errors:
            raise SystemExit(f"a client failed: {errors[0]}\n{server.server_log_tail()}")
        assert server.process is not None
        if server.process.poll() is not None:
            raise SystemExit(f"sodate up exited\n{server.server_log_tail()}")
        with lock:
            answered_now = answered
        # Read after the answers: a request answered meanwhile is in neither or in both.
        backlog = scalar(inbox, INBOX_COUNT)
        now = time.perf_counter() - started
        run.samples.append(Sample(at=now, answered=answered_now, backlog=backlog))
        if answered_now == sent and backlog == 0:
            run.drained = now
            break
        if now > timeout:
            raise SystemExit(f"not done after {timeout:.0f} s (--timeout)")
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None:
        run.cpu_seconds = cpu_after - cpu_before
    return run


def summary(run: Run, *, rate: float, warmup: float) -> dict[str, Any]:
    window = [s for s in run.samples if warmup <= s.at <= run.last_answer]
    if len(window) < 6:
        raise SystemExit("the measured window holds too few samples: lengthen --duration")
    first, last = window[0], window[-1]
    seconds = last.at - first.at
    third = max(1, len(window) // 3)
    # For each sample, when the messages answered by then had all been processed.
    lags: list[float] = []
    later = iter(run.samples)
    candidate = next(later)
    for sample in window:
        while candidate.processed < sample.answered:
            candidate = next(later)
        # A candidate found for an earlier sample may come before this one.
        lags.append(max(0.0, candidate.at - sample.at))
    total = run.drained
    # The processed rate in each third of the window: a processor whose cost grows with the
    # data already stored slows down from one to the next. A batch's messages count when it
    # commits, so a third should hold several batches.
    thirds = [window[: third + 1], window[third : 2 * third + 1], window[2 * third :]]
    by_third = [
        round((part[-1].processed - part[0].processed) / (part[-1].at - part[0].at))
        for part in thirds
    ]
    return {
        "offered_per_second": round(rate),
        "accepted_per_second": round((last.answered - first.answered) / seconds),
        "processed_per_second": round((last.processed - first.processed) / seconds),
        "processed_per_second_by_third": by_third,
        "window_seconds": round(seconds, 1),
        "backlog_peak": max(s.backlog for s in window),
        "backlog_mean_first_third": round(sum(s.backlog for s in window[:third]) / third),
        "backlog_mean_last_third": round(sum(s.backlog for s in window[-third:]) / third),
        "processed_after_answer_p50_s": round(percentile(lags, 0.5), 2),
        "processed_after_answer_p99_s": round(percentile(lags, 0.99), 2),
        "processed_after_answer_max_s": round(max(lags), 2),
        "drain_after_last_answer_s": round(run.drained - run.last_answer, 2),
        "send_lateness_p99_s": round(percentile(run.lateness, 0.99), 3),
        "events": run.events,
        "overall_processed_per_second": round(run.events / total),
        "server_cores": round(run.cpu_seconds / total, 2) if run.cpu_seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20_000, help="events offered per second")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds not measured first")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--known", type=float, default=0.3, help="share of contacts who identify")
    parser.add_argument("--batch", type=int, default=500, help="messages per /v1/batch request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP connections")
    parser.add_argument("--sample", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--segments", type=int, default=0, help="live dynamic segments")
    parser.add_argument("--scoring", action="store_true", help="the 10 rules of SCORING_MODEL")
    parser.add_argument("--lifecycle", action="store_true", help="LIFECYCLE_RULES")
    parser.add_argument("--database-url", default=os.environ.get("SODATE_BENCH_DATABASE_URL"))
    parser.add_argument("--timeout", type=float, default=900, help="give up after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    events = round(args.rate * (args.warmup + args.duration))
    _before, workload = build_workload(
        events, args.contacts, args.batch, known=args.known, seed=args.seed
    )
    info = (
        f"workload: {workload.events:,} events from {args.contacts:,} contacts offered at "
        f"{args.rate:,.0f}/s ({args.warmup:g} s warm-up, {args.duration:g} s measured), "
        f"requests of {args.batch}, {args.segments} live segments, "
        f"{'10 scoring rules' if args.scoring else 'no scoring'}, "
        f"{'lifecycle rules' if args.lifecycle else 'no lifecycle rules'}"
    )
    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir}/bench.db"
        reset(url)
        db = Database.from_url(url)
        inbox = open_inbox(db, url)
        try:
            with Server(url, data_dir, {}) as server:
                configure(
                    server, segments=args.segments, scoring=args.scoring, lifecycle=args.lifecycle
                )
                run = send_steadily(
                    server,
                    inbox,
                    workload.bodies,
                    rate=args.rate,
                    clients=args.clients,
                    sample_seconds=args.sample,
                    timeout=args.timeout,
                )
            stored = scalar(db, EVENTS_COUNT)
        finally:
            if inbox is not db:
                inbox.dispose()
            db.dispose()
    if stored != workload.events:
        raise SystemExit(f"{stored} events stored, {workload.events} sent")
    result = {"database": dialect_of(url), **summary(run, rate=args.rate, warmup=args.warmup)}
    command = reproduce_command(sys.argv, args.database_url)
    if args.json:
        print(json.dumps({"workload": info, "command": command, "result": result}, indent=2))
        return
    print(info)
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(
            f"  {key:{width}}  {value:,}" if isinstance(value, int) else f"  {key:{width}}  {value}"
        )
    print(f"reproduce: {command}")


if __name__ == "__main__":
    main()
