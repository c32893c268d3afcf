"""The runtime every entry point builds once: settings, databases and clock."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sodate.clock import Clock, ManualClock, SystemClock, parse_instant
from sodate.db.engine import Database
from sodate.events.inbox import open_inbox
from sodate.settings import ClockMode, Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    inbox: Database
    """Where accepted tracking requests wait (`sodate.events.inbox`): `db` on PostgreSQL."""
    clock: Clock
    secret_key: str

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        tune_garbage_collection()
        limit_malloc_arenas()
        secret_key = settings.resolved_secret_key()
        db = Database.from_url(settings.resolved_database_url)
        inbox = open_inbox(db, settings.resolved_database_url)
        clock: Clock
        if settings.clock is ClockMode.MANUAL:
            start = parse_instant(settings.clock_start) if settings.clock_start else None
            clock = ManualClock(db, start=start)
            clock.start()
        else:
            clock = SystemClock()
        return cls(settings=settings, db=db, inbox=inbox, clock=clock, secret_key=secret_key)

    def close(self) -> None:
        if self.inbox is not self.db:
            self.inbox.dispose()
        self.db.dispose()


MALLOC_ARENAS = 2
"""How many malloc arenas a process's threads share, where the C library is glibc.

glibc gives each new thread an arena of its own, up to eight per core, and keeps what each
arena freed for that arena's later use rather than giving it back. The
services process runs a thread per service; with 1M contacts its RSS reached 323 MB while
events were processed, against 277 MB with two arenas (`BENCHMARKS.md`, "Memory with 1M
contacts"). Python threads allocate under the GIL, so they seldom wait for an arena anyway.
A limit set in the environment (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in
`GLIBC_TUNABLES`) is the operator's and stands."""

_M_ARENA_MAX = -8
"""glibc's `mallopt` parameter number for the arena limit (malloc.h)."""


def limit_malloc_arenas() -> None:
    """Set this process's malloc arena limit, once, before it starts threads (glibc only)."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no such function (macOS), no C library (Windows)
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


GC_THRESHOLDS = (50_000, 20, 20)
"""Container allocations between young collections, and young collections between older ones.

Python's defaults (700, 10, 10) suit small heaps. A batch of events or an import chunk
allocates hundreds of thousands of dicts and tuples that live until the batch ends, and with
the defaults the collector walked them, and every object of the application, again and again
while they did: a quarter of an import's time and of the event processor's (BENCHMARKS.md,
"The garbage collector"). Reference counting frees almost all of them anyway; the collector
is only for cycles, and these thresholds still run it every 50,000 allocations.
"""
_tuned = False


def tune_garbage_collection() -> None:
    """Set this process's collector for batch work, once; entry points call it at start.

    What is alive by now (modules, the application's own objects) lives as long as the
    process: frozen, later collections no longer walk it.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


_batches_running = 0
_batches_lock = threading.Lock()


@contextmanager
def collection_deferred() -> Iterator[None]:
    """Run one batch (of events, of an import's rows) with the cyclic collector paused.

    A batch's objects stay alive until it ends, so each collection during it walks all of
    them again: 100,000 events in batches of 20,000 saw 45 young and 2 middle collections, 6 µs
    an event (BENCHMARKS.md, "Ingest with live segments and scoring"). Reference counting frees
    them when the batch ends, and the collector, running again, takes the few cycles left at
    its next threshold. The pause is the process's: batches of several threads nest, and the
    collector runs again when the last one ends, so threads that keep overlapping batches
    would starve it (today one thread a process runs them).

    The block must let go of the batch before it ends (hold it in a function called inside),
    or the collector's first run afterwards walks it all the same.
    """
    global _batches_running
    try:
        with _batches_lock:
            _batches_running += 1
            if _batches_running == 1:
                gc.disable()
        yield
    finally:
        with _batches_lock:
            _batches_running -= 1
            if _batches_running == 0:
                gc.enable()
