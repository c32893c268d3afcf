"""What building the runtime does to the process."""

from __future__ import annotations

import gc
import threading

import pytest

from sodate.runtime import GC_THRESHOLDS, Runtime, collection_deferred
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
