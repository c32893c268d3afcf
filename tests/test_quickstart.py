"""What a new user does with the README: start Sodate, create a workspace, call the API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SODATE = str(Path(sys.executable).parent / "sodate")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SODATE_")}
    env["SODATE_DATA_DIR"] = str(data_dir)
    # Beside the data: what a server killed outright leaves in its temporary directory.
    env["TMPDIR"] = str(data_dir.parent)
    return env


def _wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sodate up exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("sodate up did not become healthy in time")


def test_readme_quick_start_is_exactly_two_commands() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


@pytest.mark.slow
def test_up_then_workspace_create_then_api_calls(tmp_path: Path) -> None:
    for documented in (
        '.venv/bin/sodate workspace create "My Company"',
        'curl -H "Authorization: Bearer $SODATE_KEY" http://127.0.0.1:8000/api/v1/workspace',
    ):
        assert documented in README
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _clean_env(tmp_path / "var")
    server = subprocess.Popen([SODATE, "up", "--port", str(port)], env=env, cwd=tmp_path)
    try:
        _wait_healthy(base, server)
        assert httpx.get(f"{base}/docs").status_code == 200
        assert (tmp_path / "var" / "sodate.db").exists()
        assert (tmp_path / "var" / "secret_key").exists()

        created = subprocess.run(
            [SODATE, "workspace", "create", "My Company", "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        keys = json.loads(created.stdout)
        headers = {"Authorization": f"Bearer {keys['admin_key']['key']}"}

        workspace = httpx.get(f"{base}/api/v1/workspace", headers=headers)
        assert workspace.status_code == 200
        assert workspace.json()["sender"]["complete"] is False
        sender = {
            "name": "株式会社サンプル",
            "email": "news@example.jp",
            "postal_address": "東京都千代田区1-1",
            "contact": "03-1234-5678",
        }
        patched = httpx.patch(f"{base}/api/v1/workspace", headers=headers, json={"sender": sender})
        assert patched.status_code == 200
        assert patched.json()["sender"]["complete"] is True
        assert httpx.get(f"{base}/api/v1/workspace").status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(timeout=20) == 0
        finally:
            server.kill()
