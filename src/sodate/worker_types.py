"""What a background service is. Services are listed in one place: `sodate.worker`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

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
