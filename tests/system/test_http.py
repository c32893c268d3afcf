from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sodate.app import BUSY_RETRY_AFTER_SECONDS
from sodate.db import engine
from sodate.runtime import Runtime
from tests.conftest import make_settings


def test_healthz_reports_the_database(client: TestClient, runtime: Runtime) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == runtime.db.dialect


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/api/v1/workspace" in paths
    assert "/api/v1/clock/advance" in paths
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/api/v1/openapi.json" in docs.text


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/healthz")
    body = client.get("/metrics").text
    assert 'sodate_http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert "sodate_http_request_duration_seconds_bucket" in body


def test_metrics_token_is_required_when_set(settings, tmp_path) -> None:
    from sodate.app import create_app

    guarded = make_settings(settings.database_url, tmp_path, metrics_token="m" * 40)
    runtime = Runtime.create(guarded)
    try:
        with TestClient(create_app(runtime)) as client:
            assert client.get("/metrics").status_code == 401
            ok = client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 40})
            assert ok.status_code == 200
    finally:
        runtime.close()


def test_errors_share_one_json_format(client: TestClient, admin_headers: dict[str, str]) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    unauthenticated = client.get("/api/v1/workspace")
    assert unauthenticated.status_code == 401
    assert set(unauthenticated.json()["error"]) == {"code", "message", "details"}
    invalid = client.patch("/api/v1/workspace", json={"locale": "fr"}, headers=admin_headers)
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["loc"][-1] == "locale"


def test_request_bodies_over_the_limit_are_refused(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    limit = runtime.settings.max_request_bytes
    big = {"name": "x" * (limit + 10)}
    response = client.patch("/api/v1/workspace", json=big, headers=admin_headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    def chunks():
        yield b'{"name": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    streamed = client.patch(
        "/api/v1/workspace",
        content=chunks(),
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_a_request_that_finds_the_database_busy_is_answered_503_with_retry_after(
    client: TestClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite's write lock")
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    lock = runtime.db._write_lock
    assert lock is not None
    with lock:  # another writer of this process, holding on
        busy = client.patch("/api/v1/workspace", json={"name": "待ち"}, headers=admin_headers)
    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "busy"
    assert busy.headers["Retry-After"] == str(BUSY_RETRY_AFTER_SECONDS)
    assert client.get("/api/v1/workspace", headers=admin_headers).json()["name"] != "待ち"
    done = client.patch("/api/v1/workspace", json={"name": "待ち"}, headers=admin_headers)
    assert done.status_code == 200
