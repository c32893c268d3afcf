"""Memory with 1M contacts: the peak RSS of each of Sodate's processes, phase by phase.

    python bench/worker_memory.py [--contacts 1000000] [--events 200000] [--segments 50]
                                  [--per-person 1] [--idle 70] [--json]

DESIGN §6 asks a worker to stay under 300 MB of RSS with 1M contacts. This starts a real
`sodate up` (127.0.0.1, a fresh SQLite database, its background services as deployed) and
records the peak RSS of every process of its tree, and of the CLI's, phase by phase (Linux
/proc: each process's peak, VmHWM, is reset as a phase starts and read every 0.1 s, so a peak
between two readings counts too) through these phases:

1. "import": `sodate import contacts` of a file of `--contacts` rows (bench/csv_import.py's
   file, persons in random order);
2. "definitions": `--segments` live segments (bench/ingest.py's five shapes, a fifth of them
   reading the clock) and bench/ingest.py's scoring model of 10 rules, saved through the API:
   each save computes its members or scores over every contact, in the HTTP process;
3. "events": `--events` messages over /v1/batch for contacts picked at random among the
   imported ones, `--per-person` in a row each (an identify by email first, with a user id,
   then page views and tracks by that user id), until the processor has emptied the inbox;
4. "idle": `--idle` seconds with nothing sent, long enough for the segment, score and
   lifecycle sweeps (every 60 s) to pass over the contacts;
5. "export": every contact as CSV from `GET /api/v1/exports/contacts`, read to the end.

Processes: "http" is `sodate up` itself (API, UI, tracking), "services" the background
services it supervises (event processor, sweeps, job runner, checkpoints), "import" the CLI
and "import parser" its second process.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SODATE, reset, reset_peak_rss, status_mb  # the root is on the path now
from bench.csv_import import DOMAINS, ROMAJI
from bench.csv_import import generate as generate_csv
from bench.ingest import (
    INBOX_COUNT,
    PAGES,
    TRACKS,
    Server,
    configure,
    scalar,
)
from sodate.db.engine import Database
from sodate.events.inbox import open_inbox

TARGET_MB = 300
SAMPLE_SECONDS = 0.1
BATCH = 500


class RssSampler:
    """The peak RSS of each process under the given roots, per phase, read on a thread."""

    def __init__(self) -> None:
        self.roots: dict[int, str] = {}
        self.phase = "start"
        self.peaks: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase_of(self, name: str) -> Iterator[None]:
        self.phase = name
        self.peaks.setdefault(name, {})
        for root, role in list(self.roots.items()):
            for pid, _name in _tree(root, role):
                reset_peak_rss(pid)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.sample()
            print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)

    def sample(self) -> None:
        peaks = self.peaks.setdefault(self.phase, {})
        for root, role in list(self.roots.items()):
            for pid, name in _tree(root, role):
                rss = status_mb("VmHWM", pid)
                if rss is not None and rss > peaks.get(name, 0.0):
                    peaks[name] = rss

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()


def _tree(root: int, role: str) -> list[tuple[int, str]]:
    """The root and its descendants, each named by what it runs."""
    found = [(root, role)]
    for pid in _children(root):
        found += _tree(pid, _role_of(pid, role))
    return found


def _role_of(pid: int, parent_role: str) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return parent_role
    if "up-services" in command:
        return "services"
    if "resource_tracker" in command:
        return f"{parent_role} resource tracker"
    if "multiprocessing" in command:
        return f"{parent_role} parser"
    return parent_role


def _children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # ended
        return []
    found = []
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            if not task.exists():  # the thread ended
                continue
            # Without it the services and the parser would go unmeasured, and pass for within.
            raise SystemExit("this kernel lists no /proc/<pid>/task/<tid>/children") from None
        except OSError:
            continue
    return found


def email_of(person: int) -> str:
    """Person n's email in bench/csv_import.py's file."""
    return f"{ROMAJI[person % len(ROMAJI)]}.{person}@{DOMAINS[person % len(DOMAINS)]}"


def event_bodies(contacts: int, events: int, seed: int, per_person: int = 1) -> Iterator[bytes]:
    """/v1/batch bodies: messages for people at random, `per_person` in a row each, who
    identify by email first."""
    rng = random.Random(seed)
    identified: set[int] = set()
    start = datetime.now(UTC) - timedelta(hours=1)
    person = 0
    for first in range(0, events, BATCH):
        batch = []
        for sequence in range(first, min(first + BATCH, events)):
            if sequence % per_person == 0:
                person = rng.randrange(contacts)
            message: dict[str, Any] = {
                "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "userId": f"user-{person}",
                "timestamp": (start + timedelta(milliseconds=sequence)).isoformat(),
            }
            if person not in identified:
                identified.add(person)
                message |= {
                    "type": "identify",
                    "traits": {"email": email_of(person), "plan": rng.choice(("free", "pro"))},
                }
            elif rng.random() < 0.65:
                title, path = rng.choice(PAGES)
                message |= {
                    "type": "page",
                    "name": title,
                    "properties": {"path": path.format(item=rng.randrange(500))},
                }
            else:
                message |= {
                    "type": "track",
                    "event": rng.choice(TRACKS),
                    "properties": {"price": rng.randrange(500, 20000), "currency": "JPY"},
                }
            batch.append(message)
        yield json.dumps({"batch": batch}, ensure_ascii=False).encode()


def run(args: argparse.Namespace, directory: Path) -> dict[str, dict[str, float]]:
    url = f"sqlite:///{directory}/sodate.db"
    reset(url)
    csv_path = directory / "contacts.csv"
    generate_csv(csv_path, args.contacts)
    db = Database.from_url(url)
    inbox = open_inbox(db, url)
    with Server(url, directory / "data") as server, RssSampler() as sampler:
        assert server.process is not None
        sampler.roots[server.process.pid] = "http"
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        with sampler.phase_of("import"):
            importing = subprocess.Popen(
                [SODATE, "import", "contacts", str(csv_path), "--json"],
                env=server.env,
                stdout=subprocess.DEVNULL,
            )
            sampler.roots[importing.pid] = "import"
            if importing.wait() != 0:
                raise SystemExit(f"sodate import contacts exited with {importing.returncode}")
            del sampler.roots[importing.pid]
        with sampler.phase_of("definitions"):
            configure(server, segments=args.segments, scoring=True, lifecycle=False, timeout=3600)
        with httpx.Client(base_url=server.base, timeout=3600) as http:
            with sampler.phase_of("events"):
                write = {"Authorization": "Basic " + _basic(server.write_key)}
                for body in event_bodies(args.contacts, args.events, args.seed, args.per_person):
                    http.post("/v1/batch", content=body, headers=write).raise_for_status()
                deadline = time.monotonic() + args.timeout
                while scalar(inbox, INBOX_COUNT):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"events still in the inbox after {args.timeout:.0f} s")
                    time.sleep(0.2)
            with sampler.phase_of("idle"):
                time.sleep(args.idle)
            with sampler.phase_of("export"):
                with http.stream("GET", "/api/v1/exports/contacts", headers=admin) as response:
                    response.raise_for_status()
                    exported = sum(chunk.count(b"\n") for chunk in response.iter_bytes())
                print(f"  exported {exported:,} lines", flush=True)
    if inbox is not db:
        inbox.dispose()
    db.dispose()
    return sampler.peaks


def _basic(write_key: str) -> str:
    return base64.b64encode(f"{write_key}:".encode()).decode()


def table(peaks: dict[str, dict[str, float]]) -> str:
    roles = sorted({role for phase in peaks.values() for role in phase})
    lines = ["phase         " + "".join(f"{role:>26}" for role in roles)]
    for phase, by_role in peaks.items():
        cells = "".join(
            f"{by_role[role]:>23,.0f} MB" if role in by_role else f"{'-':>26}" for role in roles
        )
        lines.append(f"{phase:<14}{cells}")
    worst = max((mb, role) for phase in peaks.values() for role, mb in phase.items())
    verdict = "within" if worst[0] <= TARGET_MB else "OVER"
    lines.append(f"highest: {worst[1]} at {worst[0]:,.0f} MB ({verdict} the {TARGET_MB} MB target)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--idle", type=float, default=70.0, help="seconds for the sweeps")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--per-person",
        type=int,
        default=1,
        help="messages each person picked sends in a row (a batch holds more messages when"
        " people send several)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds the processor has for the events"
    )
    parser.add_argument("--json", action="store_true", help="print the peaks as JSON")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("this benchmark reads /proc (Linux)")
    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as directory:
        print(
            f"{args.contacts:,} contacts, {args.events:,} events, {args.segments} segments,"
            " a scoring model of 10 rules",
            flush=True,
        )
        peaks = run(args, Path(directory))
    print(json.dumps(peaks, indent=2) if args.json else table(peaks))
    print("reproduce: " + " ".join([".venv/bin/python", *sys.argv]))


if __name__ == "__main__":
    main()
