"""The background service registry and the runner that drives the services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sodate import worker
from sodate.clock import Clock
from sodate.events.jobs import EVENT_PROCESSOR
from sodate.queue import service as queue
from sodate.queue.handlers import handler_for
from sodate.queue.jobs import job_pruner, job_runner
from sodate.queue.models import Job, JobState
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.supervisor import SERVICES_COMMAND, ServicesProcess, follow_wakes
from sodate.system.models import ServiceHeartbeat
from sodate.worker import (
    SERVICES,
    ServiceRunner,
    all_services,
    enabled_services,
    load_plugins,
    register_service,
)
from sodate.worker_types import Service, ServiceContext
from tests.conftest import make_settings
from tests.support.plugin import (
    EFFECT_KIND,
    create_effects_table,
    drop_effects_table,
    read_effects,
    record_effects,
)

WORKER_ID = "test:host:1"
# A service on this interval runs only when draining, woken or started: it never runs on its own
# during a test, so counting its passes shows exactly what the runner did.
NEVER = "maintenance_interval_seconds"
OFTEN = "job_runner_interval_seconds"


class Passes:
    """A service's `run`: counts its passes, returns the given amounts of work, may raise."""

    def __init__(self, work: Iterable[int] = (), *, error: str | None = None) -> None:
        self.count = 0
        self._work = iter(work)
        self._error = error
        self._changed = threading.Condition()

    def __call__(self, context: ServiceContext) -> int:
        with self._changed:
            self.count += 1
            self._changed.notify_all()
            count = self.count
        if self._error is not None:
            raise RuntimeError(f"{self._error} (pass {count})")
        return next(self._work, 0)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.count >= count, timeout):
                pytest.fail(f"the service ran {self.count} time(s), expected {count}")


def service(name: str, run: Callable[[ServiceContext], int], **options: Any) -> Service:
    options.setdefault("enabled_setting", "job_runner_enabled")
    options.setdefault("interval_setting", OFTEN)
    return Service(name=name, run=run, **options)


@pytest.fixture
def fast_runtime(settings: Settings) -> Iterator[Runtime]:
    """A runtime whose job runner polls every 10 ms."""
    runtime = Runtime.create(
        make_settings(settings.database_url, settings.data_dir, job_runner_interval_seconds=0.01)
    )
    # The manual clock's first read creates its row; several service threads starting together
    # would race to create it (a clock matter, not the runner's).
    runtime.clock.now()
    yield runtime
    runtime.close()


def run_services(runtime: Runtime, *services: Service) -> ServiceRunner:
    runner = ServiceRunner(runtime, services, worker_id=WORKER_ID)
    runner.start()
    return runner


def stop(runner: ServiceRunner) -> None:
    runner.stop(timeout=10)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("sodate-test-")]
    assert not alive, f"threads still running after stop(): {alive}"


def heartbeat(runtime: Runtime, name: str) -> ServiceHeartbeat:
    with runtime.db.read() as session:
        row = session.scalar(
            sa.select(ServiceHeartbeat).where(
                ServiceHeartbeat.worker_id == WORKER_ID, ServiceHeartbeat.service == name
            )
        )
        assert row is not None, f"no heartbeat for {name}"
        session.expunge(row)
    return row


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


# --- the runner ------------------------------------------------------------------------------


def test_failing_service_keeps_running_and_its_heartbeat_records_the_failures(
    fast_runtime: Runtime,
) -> None:
    failing = Passes(error="the provider is down")
    healthy = Passes()
    runner = run_services(
        fast_runtime, service("test-failing", failing), service("test-healthy", healthy)
    )
    try:
        failing.wait_for(3)
        healthy.wait_for(3)
    finally:
        stop(runner)

    beat = heartbeat(fast_runtime, "test-failing")
    assert beat.passes == beat.failures == failing.count, "every failed pass is recorded"
    assert beat.last_error is not None
    assert "Traceback (most recent call last)" in beat.last_error
    assert f"RuntimeError: the provider is down (pass {failing.count})" in beat.last_error
    assert beat.last_error_at == fast_runtime.clock.now()

    ok = heartbeat(fast_runtime, "test-healthy")
    assert ok.failures == 0
    assert ok.last_error is None
    assert ok.passes >= 1


class FailingClock:
    """A clock whose first reads fail, as when the database is briefly unreachable."""

    is_manual = False

    def __init__(self, clock: Clock, failures: int) -> None:
        self._clock = clock
        self.failures = failures

    def now(self) -> datetime:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database is unreachable")
        return self._clock.now()


def test_service_survives_a_failure_before_its_first_pass(fast_runtime: Runtime) -> None:
    runtime = replace(fast_runtime, clock=FailingClock(fast_runtime.clock, failures=1))
    passes = Passes()
    runner = run_services(runtime, service("test-clock", passes))
    try:
        passes.wait_for(2)
    finally:
        stop(runner)
    beat = heartbeat(runtime, "test-clock")
    assert beat.failures == 1
    assert beat.last_error is not None
    assert "the database is unreachable" in beat.last_error


def test_draining_service_runs_again_at_once_while_it_finds_work(runtime: Runtime) -> None:
    draining = Passes([3, 2, 1])
    runner = run_services(
        runtime, service("test-draining", draining, interval_setting=NEVER, drain=True)
    )
    try:
        draining.wait_for(4)  # three passes with work, then one that finds none
    finally:
        stop(runner)
    assert draining.count == 4, "after a pass without work it waits for its interval"


def test_service_that_does_not_drain_waits_for_its_interval(runtime: Runtime) -> None:
    steady = Passes([3, 2, 1])
    runner = run_services(runtime, service("test-steady", steady, interval_setting=NEVER))
    try:
        steady.wait_for(1)
        runner.wake()
        steady.wait_for(2)  # wake() runs the next pass now
    finally:
        stop(runner)
    assert steady.count == 2


def test_failing_pass_does_not_drain(runtime: Runtime) -> None:
    failing = Passes(error="broken")
    runner = run_services(
        runtime, service("test-failing-drain", failing, interval_setting=NEVER, drain=True)
    )
    try:
        failing.wait_for(1)
    finally:
        stop(runner)
    assert failing.count == 1


def test_stop_ends_a_service_that_always_finds_work(runtime: Runtime) -> None:
    endless = Passes(iter(lambda: 1, 0))
    runner = run_services(runtime, service("test-endless", endless, drain=True))
    try:
        endless.wait_for(5)
    finally:
        stop(runner)


def test_stop_lets_the_current_pass_finish(runtime: Runtime) -> None:
    started = threading.Event()
    finished = threading.Event()
    passes = []

    def slow_pass(context: ServiceContext) -> int:
        passes.append(1)
        started.set()
        assert context.stop.wait(10), "the runner never stopped"
        time.sleep(0.2)  # work still in progress after stop() was asked for
        finished.set()
        return 1

    runner = run_services(runtime, service("test-slow", slow_pass, drain=True))
    try:
        assert started.wait(10)
    finally:
        stop(runner)
    assert finished.is_set(), "stop() returned before the pass in progress finished"
    assert len(passes) == 1, "no pass starts after stop()"


def test_job_runner_service_works_off_a_backlog(fast_runtime: Runtime) -> None:
    runtime = fast_runtime
    create_effects_table(runtime.db)
    try:
        now = runtime.clock.now()
        with runtime.db.transaction() as session:
            jobs = [queue.NewJob(EFFECT_KIND, f"j{i}", now) for i in range(250)]
            queue.enqueue(session, jobs, now=now, max_attempts=3)

        def all_done() -> bool:
            with runtime.db.read() as session:
                states = session.scalars(sa.select(Job.state).distinct()).all()
            return list(states) == [JobState.DONE.value]

        runner = run_services(runtime, job_runner)
        try:
            wait_until(all_done, "the job runner to finish 250 jobs")
        finally:
            stop(runner)
        job_ids = sorted(job_id for job_id, _pid, _attempt in read_effects(runtime.db))
        assert len(job_ids) == len(set(job_ids)) == 250, "each job ran exactly once"
    finally:
        drop_effects_table(runtime.db)


def test_job_pruner_service_deletes_old_done_jobs(runtime: Runtime) -> None:
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        queue.enqueue(session, [queue.NewJob(EFFECT_KIND, "old", now)], now=now, max_attempts=1)
        claimed = queue.claim_due(
            session, claim_token="t", now=now, limit=10, lease=timedelta(minutes=5)
        )
        queue.complete(session, claimed, claim_token="t", now=now)
    context = ServiceContext(runtime=runtime, worker_id=WORKER_ID, stop=threading.Event())
    retention = timedelta(days=runtime.settings.job_retention_days)

    runtime.clock.advance(retention)  # type: ignore[attr-defined]
    assert job_pruner.run(context) == 0, "kept for the whole retention period"
    runtime.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert job_pruner.run(context) == 1


# --- the registry ----------------------------------------------------------------------------


def _settings(tmp_path: Any, **overrides: Any) -> Settings:
    return make_settings("sqlite://", tmp_path, **overrides)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {},
            [
                "job-runner",
                "event-processor",
                "job-pruner",
                "session-cleaner",
                "heartbeat-pruner",
                "wal-checkpointer",
                "segment-sweeper",
                "score-sweeper",
                "lifecycle-sweeper",
                "handoff-opener",
            ],
        ),
        (
            {"maintenance_enabled": False},
            [
                "job-runner",
                "event-processor",
                "segment-sweeper",
                "score-sweeper",
                "lifecycle-sweeper",
                "handoff-opener",
            ],
        ),
        (
            {"job_runner_enabled": False, "event_processor_enabled": False},
            [
                "job-pruner",
                "session-cleaner",
                "heartbeat-pruner",
                "wal-checkpointer",
                "segment-sweeper",
                "score-sweeper",
                "lifecycle-sweeper",
                "handoff-opener",
            ],
        ),
        (
            {
                "job_runner_enabled": False,
                "event_processor_enabled": False,
                "maintenance_enabled": False,
                "segment_sweep_enabled": False,
                "score_sweep_enabled": False,
                "lifecycle_sweep_enabled": False,
                "handoff_enabled": False,
            },
            [],
        ),
    ],
)
def test_enabled_services_honour_their_enabled_setting(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], expected: list[str]
) -> None:
    monkeypatch.setattr(worker, "_plugin_services", [])
    names = [s.name for s in enabled_services(_settings(tmp_path, **overrides))]
    assert names == expected


def test_plugin_services_honour_their_enabled_setting(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "_plugin_services", [])
    extra = register_service(
        service("test-plugin-service", Passes(), enabled_setting="maintenance_enabled")
    )
    assert extra in all_services()
    assert extra in enabled_services(_settings(tmp_path))
    assert extra not in enabled_services(_settings(tmp_path, maintenance_enabled=False))


@pytest.mark.parametrize("registered", SERVICES, ids=lambda s: s.name)
def test_every_service_names_real_settings(registered: Service) -> None:
    fields = Settings.model_fields
    enabled = fields.get(registered.enabled_setting)
    assert enabled is not None, f"{registered.enabled_setting} is not a setting"
    assert enabled.annotation is bool
    interval = fields.get(registered.interval_setting)
    assert interval is not None, f"{registered.interval_setting} is not a setting"
    assert interval.annotation in (int, float)
    assert isinstance(interval.default, int | float)
    assert interval.default > 0


def test_service_names_are_unique() -> None:
    names = [s.name for s in SERVICES]
    assert len(names) == len(set(names))


def test_load_plugins_imports_the_listed_modules(tmp_path: Any) -> None:
    settings = _settings(tmp_path, plugins="tests.support.plugin, ")
    assert settings.plugins == ("tests.support.plugin",)
    load_plugins(settings)
    assert handler_for(EFFECT_KIND) is record_effects

    with pytest.raises(ModuleNotFoundError):
        load_plugins(_settings(tmp_path, plugins="tests.support.no_such_plugin"))


# --- sodate up's services process ------------------------------------------------------------


def test_wakes_from_the_pipe_wake_services_and_its_end_stops_them(runtime: Runtime) -> None:
    woken = Passes()
    other = Passes()
    runner = run_services(
        runtime,
        service("test-woken", woken, interval_setting=NEVER),
        service("test-other", other, interval_setting=NEVER),
    )
    read_end, write_end = os.pipe()
    try:
        woken.wait_for(1)
        other.wait_for(1)
        follow_wakes(runner, read_end)
        os.write(write_end, b"test-wo")
        os.write(write_end, b"ken\n")
        woken.wait_for(2)
        assert other.count == 1
        os.write(write_end, b"\n")
        woken.wait_for(3)
        other.wait_for(2)
        os.close(write_end)
        wait_until(runner.stop_event.is_set, "the end of the wakes to stop the runner")
        runner.wait()
    finally:
        stop(runner)
        os.close(read_end)


def test_wakes_that_cannot_be_read_stop_the_services(runtime: Runtime, tmp_path: Path) -> None:
    woken = Passes()
    runner = run_services(runtime, service("test-woken", woken, interval_setting=NEVER))
    unreadable = os.open(tmp_path, os.O_RDONLY)  # a read gives EISDIR
    try:
        woken.wait_for(1)
        follow_wakes(runner, unreadable)
        wait_until(runner.stop_event.is_set, "a failed read of the wakes to stop the runner")
        runner.wait()
    finally:
        stop(runner)
        os.close(unreadable)


def test_the_services_process_stops_cleanly_on_its_own_sigterm(runtime: Runtime) -> None:
    # As systemd stops a service: SIGTERM to every process, while the wakes pipe stays open.
    child = subprocess.Popen(
        SERVICES_COMMAND, env=_services_env(runtime), stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdin is not None
    assert child.stderr is not None
    # The reads below block; a child that hangs is killed, and they then meet the end of output.
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        started = b""
        while b"background services started" not in started:
            line = child.stderr.readline()
            assert line, f"the services process ended early: {started.decode()[-2000:]}"
            started += line
        child.send_signal(signal.SIGTERM)
        rest = child.stderr.read()
        assert child.wait(timeout=10) == 0, rest.decode()[-2000:]
        assert b"Fatal Python error" not in rest
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdin.close()


def _services_env(runtime: Runtime) -> dict[str, str]:
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SODATE_")}
    return env | {
        "SODATE_DATABASE_URL": settings.resolved_database_url,
        "SODATE_SECRET_KEY": settings.resolved_secret_key(),
        "SODATE_DATA_DIR": str(settings.data_dir),
    }


def test_a_ctrl_c_while_the_services_process_starts_leaves_it_to_its_parent(
    runtime: Runtime,
) -> None:
    # Ctrl-C in `make run` reaches the whole process group, the services process too, which
    # may still be importing: `up` stops it by closing its stdin, with no traceback on screen.
    child = subprocess.Popen(
        SERVICES_COMMAND,
        env=_services_env(runtime),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(0.3)  # past the interpreter's start, within the imports (about a second)
        child.send_signal(signal.SIGINT)
        _out, errors = child.communicate(timeout=60)  # which closes its stdin
        assert child.returncode == 0, errors.decode()[-2000:]
        assert b"KeyboardInterrupt" not in errors
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


def test_a_wake_never_blocks_and_a_child_that_will_not_stop_is_killed() -> None:
    # A child that reads no wakes and does not notice the end of them.
    stubborn = ServicesProcess(
        worker_id=WORKER_ID, command=[sys.executable, "-c", "import time; time.sleep(60)"]
    )
    stubborn.start()
    try:
        started = time.monotonic()
        for _ in range(10_000):  # 160 kB of wakes: more than a pipe holds
            stubborn.wake(EVENT_PROCESSOR)
        assert time.monotonic() - started < 2
    finally:
        started = time.monotonic()
        stubborn.stop(timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 5
