"""What a background service is. Services are listed in one place: `sodate.worker`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from sodate.db.locks import lock_workspace
from sodate.runtime import Runtime


@dataclass(frozen=True)
class ServiceContext:
    runtime: Runtime
    worker_id: str
    stop: threading.Event


@dataclass(frozen=True)
class Service:
    """A pass run every `interval` seconds (± jitter) while its enabled setting is true.

    `run` returns how much work it did; a draining service that did some work runs again at
    once instead of sleeping, so a backlog is worked off at full speed.
    """

    name: str
    run: Callable[[ServiceContext], int]
    enabled_setting: str
    interval_setting: str
    jitter: float = 0.1
    drain: bool = False


def sweep_workspaces(
    context: ServiceContext,
    workspace_ids: Callable[[Session], Iterable[str]],
    work: Callable[[Session, str, datetime], int],
) -> int:
    """Run `work` for each workspace in a transaction of its own, holding the workspace's
    processing lock as the event processor does; return the sum of what it returns."""
    runtime = context.runtime
    with runtime.db.read() as session:
        ids = list(workspace_ids(session))
    done = 0
    for workspace_id in ids:
        now = runtime.clock.now()
        with runtime.db.transaction() as session:
            lock_workspace(session, workspace_id, wait=True)
            done += work(session, workspace_id, now)
    return done


class BackgroundServices(Protocol):
    """What the HTTP app needs of the services it runs with: started and stopped with the
    server, and woken early when a request brings them work. `sodate up` hands it a handle on
    its services process; tests hand it an in-process `ServiceRunner`."""

    @property
    def worker_id(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self, service: str | None = None) -> None: ...
