"""The event processor: a background service that works off the inbox of accepted messages."""

from __future__ import annotations

from sodate.pipeline import process_pending
from sodate.worker_types import Service, ServiceContext

EVENT_PROCESSOR = "event-processor"


def _process(context: ServiceContext) -> int:
    return process_pending(context.runtime, batch_size=context.runtime.settings.event_batch_size)


event_processor = Service(
    name=EVENT_PROCESSOR,
    run=_process,
    enabled_setting="event_processor_enabled",
    interval_setting="event_processor_interval_seconds",
    jitter=0.2,
    drain=True,
)
