"""What a background service is. Services are listed in one place: `sodate.worker`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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


class BackgroundServices(Protocol):
    """What the HTTP app needs of the services it runs with: started and stopped with the
    server, and woken early when a request brings them work. `sodate up` hands it a handle on
    its services process; tests hand it an in-process `ServiceRunner`."""

    @property
    def worker_id(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self, service: str | None = None) -> None: ...
