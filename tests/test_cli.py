"""The `sodate` command line, run in-process through its real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sodate import cli
from sodate.app import create_app
from sodate.runtime import Runtime
from sodate.settings import Settings
from tests.conftest import TEST_SECRET, bearer

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("SODATE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("SODATE_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("SODATE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SODATE_CLOCK", "manual")
    monkeypatch.setenv("SODATE_CLOCK_START", settings.clock_start or "")

    def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("sys.argv", ["sodate", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.main()
            raise SystemExit(0)
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    return invoke


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_workspace_create_prints_id_and_working_keys(run: Run, runtime: Runtime) -> None:
    code, out, _ = run("workspace", "create", "展示会チーム", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["workspace"]["name"] == "展示会チーム"
    assert created["workspace"]["timezone"] == "Asia/Tokyo"
    assert created["admin_key"]["key"].startswith("sk_")
    assert created["write_key"]["key"].startswith("wk_")
    with TestClient(create_app(runtime)) as client:
        response = client.get("/api/v1/workspace", headers=bearer(created["admin_key"]["key"]))
    assert response.status_code == 200
    assert response.json()["id"] == created["workspace"]["id"]


def test_workspace_create_human_output(run: Run) -> None:
    code, out, _ = run("workspace", "create", "Acme")
    assert code == 0
    assert "workspace id" in out
    assert "sk_" in out
    assert "wk_" in out


def test_errors_are_one_line_and_a_non_zero_exit(run: Run) -> None:
    assert run("workspace", "create", "Acme")[0] == 0
    code, _, err = run("workspace", "create", "Acme")
    assert code == 1
    assert "already exists" in _error_line(err)
    code, _, err = run("workspace", "create", "Bad", "--timezone", "Nowhere/Land")
    assert code == 1
    assert "time zone" in _error_line(err)


def test_a_group_without_a_command_shows_its_help_once_and_usage_errors_say_what(
    run: Run,
) -> None:
    for group in ("clock", "segments", "scoring"):
        code, out, err = run(group)
        assert code == 2
        assert (out + err).count("Usage:") == 1, out + err
        assert "error:" not in out + err
    code, _, err = run("clock", "frob")
    assert code == 2
    assert "No such command 'frob'" in err


def test_user_create_and_api_keys(run: Run, runtime: Runtime) -> None:
    run("workspace", "create", "Acme")
    code, out, _ = run(
        "user",
        "create",
        "--email",
        "Sato@Example.jp",
        "--name",
        "佐藤 花子",
        "--role",
        "admin",
        "--json",
        env={"SODATE_USER_PASSWORD": "correct horse battery"},
    )
    assert code == 0
    assert json.loads(out)["email"] == "sato@example.jp"
    code, _, err = run(
        "user",
        "create",
        "--email",
        "x@example.jp",
        "--name",
        "X",
        env={"SODATE_USER_PASSWORD": "short"},
    )
    assert code == 1
    assert "password" in _error_line(err)

    code, out, _ = run("apikey", "create", "--name", "CRM sync", "--role", "viewer", "--json")
    assert code == 0
    key = json.loads(out)
    code, out, _ = run("apikey", "list", "--json")
    listed = json.loads(out)
    assert key["key"] not in out
    assert {k["id"] for k in listed} >= {key["id"]}
    with TestClient(create_app(runtime)) as client:
        assert client.get("/api/v1/workspace", headers=bearer(key["key"])).status_code == 200
        assert run("apikey", "revoke", str(key["id"]))[0] == 0
        assert client.get("/api/v1/workspace", headers=bearer(key["key"])).status_code == 401


def test_workspace_must_be_named_when_there_are_several(run: Run) -> None:
    run("workspace", "create", "One")
    run("workspace", "create", "Two")
    code, _, err = run("apikey", "create", "--name", "k")
    assert code == 1
    assert "--workspace" in _error_line(err)
    code, out, _ = run("apikey", "create", "--name", "k", "--workspace", "Two", "--json")
    assert code == 0
    assert json.loads(out)["role"] == "marketer"


def test_clock_advance(run: Run) -> None:
    code, out, _ = run("clock", "advance", "3d", "--json")
    assert code == 0
    assert json.loads(out)["now"].startswith("2026-04-04")
    code, out, _ = run("clock", "show", "--json")
    assert json.loads(out) == {"mode": "manual", "now": "2026-04-04T00:00:00+00:00"}
    code, _, err = run("clock", "advance", "3d", env={"SODATE_CLOCK": "system"})
    assert code == 1
    assert "SODATE_CLOCK=manual" in _error_line(err)


def test_unusable_database_is_one_clear_line(run: Run, tmp_path: Path) -> None:
    code, _, err = run(
        "workspace", "list", env={"SODATE_DATABASE_URL": f"sqlite:///{tmp_path}/nowhere/../x/db"}
    )
    assert code == 1
    _error_line(err)


def test_commands_refuse_an_unmigrated_database(run: Run, tmp_path: Path) -> None:
    code, _, err = run(
        "workspace", "list", env={"SODATE_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    )
    assert code == 1
    assert "sodate migrate" in _error_line(err)
    assert run("migrate")[0] == 0
    assert run("workspace", "list", "--json")[0] == 0
