"""Prometheus metrics shared across capabilities."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
)
