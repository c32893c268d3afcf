"""Job handlers for benchmarks, loaded by workers through SODATE_PLUGINS=bench.plugin."""

from __future__ import annotations

from collections.abc import Sequence

from sodate.queue.handlers import ClaimedJob, JobContext, job_handler


@job_handler("bench.noop")
def noop(_context: JobContext, _jobs: Sequence[ClaimedJob]) -> None:
    """Does nothing, so the figure is the queue's own cost: claim, run, complete."""
