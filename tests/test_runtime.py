"""What building the runtime does to the process."""

from __future__ import annotations

import gc

from sodate.runtime import GC_THRESHOLDS, Runtime
from sodate.settings import Settings


def test_the_collector_is_set_for_batch_work(settings: Settings) -> None:
    runtime = Runtime.create(settings)
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
    finally:
        runtime.close()
