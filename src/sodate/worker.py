"""The registry of background services and the runner that drives them.

The same runner runs in `sodate up`'s services process and in each `sodate worker`.
Each service has its own thread; a failing pass is logged, counted in its heartbeat, and the
service carries on. Stopping lets the pass in progress finish: every batch is one transaction,
so a stop never leaves half a batch done, and a SIGKILL leaves only uncommitted work that the
job leases hand to another worker.
"""

from __future__ import annotations

import importlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime

import structlog

from sodate.events.jobs import event_processor
from sodate.handoff import jobs as handoff_jobs
from sodate.handoff.jobs import handoff_opener
from sodate.imports import jobs as import_jobs
from sodate.lifecycle.jobs import lifecycle_sweeper
from sodate.metrics import SERVICE_LAST_PASS, SERVICE_PASSES
from sodate.queue.jobs import job_pruner, job_runner
from sodate.runtime import Runtime
from sodate.scoring.jobs import score_sweeper
from sodate.segments.jobs import segment_sweeper
from sodate.settings import Settings
from sodate.system.jobs import heartbeat_pruner, wal_checkpointer
from sodate.system.service import record_heartbeat
from sodate.worker_types import Service, ServiceContext
from sodate.workspaces.jobs import session_cleaner

log = structlog.get_logger(__name__)

HEARTBEAT_EVERY_SECONDS = 5.0

SERVICES: tuple[Service, ...] = (
    job_runner,
    event_processor,
    job_pruner,
    session_cleaner,
    heartbeat_pruner,
    wal_checkpointer,
    segment_sweeper,
    score_sweeper,
    lifecycle_sweeper,
    handoff_opener,
)

# Modules whose job handlers every runner needs; importing them registers the handlers.
JOB_HANDLER_MODULES = (import_jobs, handoff_jobs)

_plugin_services: list[Service] = []


def register_service(service: Service) -> Service:
    """For plugins (`SODATE_PLUGINS`): add a service to every runner started afterwards."""
    _plugin_services.append(service)
    return service


def load_plugins(settings: Settings) -> None:
    """Import the modules named in SODATE_PLUGINS; importing them registers their handlers."""
    for module in settings.plugins:
        importlib.import_module(module)


def all_services() -> tuple[Service, ...]:
    return SERVICES + tuple(_plugin_services)


def enabled_services(settings: Settings) -> list[Service]:
    return [service for service in all_services() if getattr(settings, service.enabled_setting)]


def new_worker_id(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


class ServiceRunner:
    def __init__(self, runtime: Runtime, services: Iterable[Service], *, worker_id: str) -> None:
        self.runtime = runtime
        self.worker_id = worker_id
        self.services = list(services)
        self.stop_event = threading.Event()
        self._wake = {service.name: threading.Event() for service in self.services}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for service in self.services:
            thread = threading.Thread(
                target=self._loop, args=(service,), name=f"sodate-{service.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info(
            "background services started",
            worker_id=self.worker_id,
            services=[service.name for service in self.services],
        )

    def wake(self, service: str | None = None) -> None:
        """Run the named service's next pass (all, if none) now rather than after its interval."""
        for name, event in self._wake.items():
            if service is None or name == service:
                event.set()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        log.info("background services stopped", worker_id=self.worker_id)

    def wait(self) -> None:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)

    def _loop(self, service: Service) -> None:
        context = ServiceContext(
            runtime=self.runtime, worker_id=self.worker_id, stop=self.stop_event
        )
        interval = float(getattr(self.runtime.settings, service.interval_setting))
        wake = self._wake[service.name]
        # Read in the first pass, not here: an error escaping before the loop would end the
        # service's thread for good.
        started_at: datetime | None = None
        passes = failures = 0
        last_beat = 0.0
        while not self.stop_event.is_set():
            error: BaseException | None = None
            done = 0
            try:
                if started_at is None:
                    started_at = self.runtime.clock.now()
                done = service.run(context)
                SERVICE_PASSES.labels(service=service.name, outcome="ok").inc()
            except Exception as exc:
                error = exc
                failures += 1
                SERVICE_PASSES.labels(service=service.name, outcome="error").inc()
                log.exception("background service pass failed", service=service.name)
            passes += 1
            SERVICE_LAST_PASS.labels(service=service.name).set_to_current_time()
            if error is not None or time.monotonic() - last_beat >= HEARTBEAT_EVERY_SECONDS:
                last_beat = time.monotonic()
                self._beat(service, started_at, passes, failures, error)
            if service.drain and done > 0 and error is None:
                continue
            wake.wait(_jittered(interval, service.jitter))
            wake.clear()

    def _beat(
        self,
        service: Service,
        started_at: datetime | None,
        passes: int,
        failures: int,
        error: BaseException | None,
    ) -> None:
        try:
            now = self.runtime.clock.now()
            with self.runtime.db.transaction() as session:
                record_heartbeat(
                    session,
                    worker_id=self.worker_id,
                    service=service.name,
                    started_at=started_at or now,
                    now=now,
                    passes=passes,
                    failures=failures,
                    error=error,
                )
        except Exception:
            log.exception("could not record heartbeat", service=service.name)


def _jittered(interval: float, jitter: float) -> float:
    return interval * (1 + random.uniform(-jitter, jitter))  # noqa: S311 - spreading load only
