"""What building the runtime does to the process."""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import threading

import pytest

from sodate.runtime import GC_THRESHOLDS, MALLOC_ARENAS, Runtime, collection_deferred
from sodate.settings import Settings


def test_the_collector_is_set_for_batch_work(settings: Settings) -> None:
    runtime = Runtime.create(settings)
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
    finally:
        runtime.close()


def test_the_collector_waits_for_the_last_batch_and_runs_again_after_an_error() -> None:
    first_inside = threading.Event()
    first_may_end = threading.Event()
    seen: dict[str, bool] = {}

    def first_batch() -> None:
        with collection_deferred():
            first_inside.set()
            first_may_end.wait(timeout=10)

    thread = threading.Thread(target=first_batch)
    thread.start()
    try:
        assert first_inside.wait(timeout=10)
        with collection_deferred():
            seen["during both"] = gc.isenabled()
            first_may_end.set()
            thread.join(timeout=10)
            seen["after the first ended"] = gc.isenabled()
    finally:
        first_may_end.set()
        thread.join(timeout=10)
    assert seen == {"during both": False, "after the first ended": False}
    assert gc.isenabled()

    with pytest.raises(RuntimeError), collection_deferred():
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


_ARENAS_OF_EIGHT_THREADS = """
import ctypes, sys, threading
if sys.argv[1] == "limited":
    from sodate.runtime import limit_malloc_arenas
    limit_malloc_arenas()
go = threading.Barrier(8)
def work():
    go.wait()
    blocks = [bytearray(100_000) for _ in range(20)]  # past pymalloc: glibc's malloc
    go.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", _ARENAS_OF_EIGHT_THREADS, mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_share_at_most_two_malloc_arenas() -> None:
    try:
        ctypes.CDLL(None).malloc_stats  # noqa: B018
    except AttributeError:
        pytest.skip("not glibc")
    assert _arenas("default") > MALLOC_ARENAS
    assert _arenas("limited") <= MALLOC_ARENAS
