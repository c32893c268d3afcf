"""The listener `sodate worker` serves for probes and Prometheus."""

from __future__ import annotations

import httpx

from sodate.runtime import Runtime
from sodate.worker_http import start_health_server


def test_worker_serves_healthz_and_metrics(runtime: Runtime) -> None:
    server = start_health_server(runtime, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 200
        assert health.json()["database"] == runtime.db.dialect
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert "sodate_jobs_finished_total" in metrics.text
    finally:
        server.shutdown()
        server.server_close()


def test_worker_healthz_reports_an_unreachable_database(runtime: Runtime) -> None:
    broken = Runtime.create(
        runtime.settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/none"})
    )
    server = start_health_server(broken, "127.0.0.1", 0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/healthz", timeout=30)
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}
    finally:
        server.shutdown()
        server.server_close()
        broken.close()
