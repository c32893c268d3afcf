"""Structured logs: with SODATE_LOG_FORMAT=json every request is one JSON object per line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sodate.app import create_app
from sodate.logs import configure_logging
from sodate.runtime import Runtime
from sodate.settings import LogFormat


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_request_log_lines(
    runtime: Runtime, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging(runtime.settings.model_copy(update={"log_format": LogFormat.JSON}))
    with TestClient(create_app(runtime)) as client:
        client.get("/healthz", headers={"X-Request-ID": "req-42"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests, lines
    entry = requests[-1]
    assert entry["request_id"] == "req-42"
    assert entry["route"] == "/healthz"
    assert entry["status"] == 200
    assert entry["level"] == "info"
    assert isinstance(entry["duration_ms"], float)
