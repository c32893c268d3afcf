"""`sodate up` runs the background services in a child process: the server wakes it, restarts
it when it dies, and takes it down when the server ends, however the server ends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from sodate.events.jobs import EVENT_PROCESSOR
from sodate.runtime import Runtime
from sodate.settings import ClockMode, Settings
from sodate.system.models import ServiceHeartbeat
from sodate.workspaces.schemas import Created
from tests.conftest import bearer, new_workspace
from tests.test_quickstart import SODATE, _clean_env, _free_port, _wait_healthy

pytestmark = pytest.mark.slow

RESTARTED = "background services process died: restarting it"
STOPPED = "background services stopped"


class Up:
    """A `sodate up` on a fresh SQLite database, leading its own process group."""

    def __init__(self, directory: Path) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = directory / "up.log"
        env = _clean_env(directory / "var")
        # After its first pass the event processor would sleep for a minute: only a wake from
        # the server can make it process a message at once.
        env["SODATE_EVENT_PROCESSOR_INTERVAL_SECONDS"] = "60"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [SODATE, "up", "--port", str(port)],
                env=env,
                cwd=directory,
                stdout=output,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        _wait_healthy(self.base, self.process)
        self.runtime = Runtime.create(
            Settings(
                data_dir=directory / "var",
                database_url=f"sqlite:///{directory / 'var' / 'sodate.db'}",
                clock=ClockMode.SYSTEM,
            )
        )

    def end(self) -> None:
        # The whole group, so that a services process left behind by a failure goes too.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.runtime.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.output()}")
            time.sleep(0.05)

    def services_pid(self, *, other_than: int | None = None) -> int:
        """The pid of the process whose event processor has made its first pass."""
        pids: list[int] = []

        def found() -> bool:
            with self.runtime.db.read() as session:
                workers = session.scalars(
                    sa.select(ServiceHeartbeat.worker_id).where(
                        ServiceHeartbeat.service == EVENT_PROCESSOR
                    )
                ).all()
            pids[:] = [
                pid for pid in (int(w.rsplit(":", 1)[1]) for w in workers) if pid != other_than
            ]
            return bool(pids)

        self.wait_until(found, "the event processor's heartbeat", timeout=15)
        assert len(pids) == 1
        return pids[0]

    def track(self, created: Created, user_id: str) -> None:
        response = httpx.post(
            f"{self.base}/v1/track",
            json={"userId": user_id, "event": "Signed Up"},
            headers={"X-Write-Key": created.write_key.key},
        )
        assert response.status_code == 200, response.text

    def contact_exists(self, created: Created, user_id: str) -> bool:
        response = httpx.get(
            f"{self.base}/api/v1/contacts",
            params={"user_id": user_id},
            headers=bearer(created.admin_key.key),
        )
        assert response.status_code == 200, response.text
        return bool(response.json()["items"])

    def assert_tracking_is_processed_at_once(self, user_id: str) -> None:
        created = new_workspace(self.runtime)
        self.track(created, user_id)
        self.wait_until(
            lambda: self.contact_exists(created, user_id), "the tracked contact", timeout=5
        )


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state, parent pid, …"""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return text.rsplit(")", 1)[1].split()


def _parent_of(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[1])


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    server = Up(tmp_path)
    try:
        yield server
    finally:
        server.end()


def test_tracking_wakes_the_event_processor_in_the_services_process(up: Up) -> None:
    services = up.services_pid()

    assert services != up.process.pid
    assert _parent_of(services) == up.process.pid
    up.assert_tracking_is_processed_at_once("u-1")


def test_a_killed_services_process_is_restarted(up: Up) -> None:
    first = up.services_pid()

    os.kill(first, signal.SIGKILL)

    second = up.services_pid(other_than=first)
    assert _parent_of(second) == up.process.pid
    assert not _alive(first)
    assert RESTARTED in up.output()
    up.assert_tracking_is_processed_at_once("u-after-restart")


def test_the_servers_metrics_count_the_services_processes_passes(up: Up) -> None:
    first = up.services_pid()

    def passes() -> float:
        return _metric(up, "sodate_service_passes_total", service=EVENT_PROCESSOR, outcome="ok")

    up.wait_until(lambda: passes() >= 1, "the event processor's first pass counted", timeout=10)
    os.kill(first, signal.SIGKILL)
    counted_by_first = passes()
    up.services_pid(other_than=first)

    # The restarted process's passes add to those of the one that died.
    up.wait_until(lambda: passes() > counted_by_first, "its successor's passes", timeout=10)
    assert _metric(up, "sodate_service_last_pass_timestamp_seconds", service=EVENT_PROCESSOR) > 0
    assert _metric(up, "sodate_http_requests_total", route="/healthz", status="200") >= 1
    assert _metric(up, "process_cpu_seconds_total") > 0


def _metric(up: Up, name: str, **labels: str) -> float:
    """The value of the server's sample of that name with those labels; 0 if it has none."""
    text = httpx.get(f"{up.base}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return 0.0


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM-to-the-server"),
        pytest.param(signal.SIGTERM, True, id="SIGTERM-to-the-group"),
        pytest.param(signal.SIGINT, True, id="Ctrl-C"),
    ],
)
def test_the_services_process_stops_with_the_server(
    up: Up, signum: signal.Signals, to_group: bool
) -> None:
    services = up.services_pid()

    if to_group:
        os.killpg(up.process.pid, signum)
    else:
        up.process.send_signal(signum)

    assert up.process.wait(timeout=20) == 0
    assert not _alive(services)
    output = up.output()
    assert STOPPED in output
    assert RESTARTED not in output


def test_the_services_process_stops_when_the_server_is_killed(up: Up) -> None:
    services = up.services_pid()

    up.process.kill()
    up.process.wait()

    up.wait_until(lambda: not _alive(services), "the services process to end", timeout=10)
    assert STOPPED in up.output()
