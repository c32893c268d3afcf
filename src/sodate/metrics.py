"""Prometheus metrics shared across capabilities, and their exposition.

`sodate up` runs its background services in a child process (`sodate.supervisor`), whose
counters (service passes, jobs) the server's `/metrics` must show too. There the metrics live
in prometheus_client's multiprocess files (`PROMETHEUS_MULTIPROC_DIR`, which `up` sets for
both processes before any metric exists), and `exposition` sums every process's files.
"""

from __future__ import annotations

import os

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
"""Where each process keeps its metrics when several processes answer for one server."""

HTTP_REQUESTS = Counter(
    "sodate_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "sodate_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)
JOBS_FINISHED = Counter(
    "sodate_jobs_finished_total", "Job attempts by kind and outcome", ["kind", "outcome"]
)
SERVICE_PASSES = Counter(
    "sodate_service_passes_total", "Background service passes by outcome", ["service", "outcome"]
)
SERVICE_LAST_PASS = Gauge(
    "sodate_service_last_pass_timestamp_seconds",
    "When a background service last finished a pass",
    ["service"],
    # Across processes, the latest: a restarted services process's predecessor passed earlier.
    multiprocess_mode="max",
)


def exposition() -> bytes:
    """The metrics in Prometheus's text format: this process's, or, where processes share a
    directory of metrics, all of theirs summed, with this process's CPU, memory and
    collector figures beside them as a single process shows them."""
    if MULTIPROCESS_DIRECTORY not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return generate_latest(registry)
