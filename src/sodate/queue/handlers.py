"""The registry of job kinds and the functions that run them.

A handler receives a batch of jobs of one kind and does their work in the transaction it is
given; the runner marks them done in that same transaction, so the work and its completion
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sodate.runtime import Runtime


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    idempotency_key: str
    workspace_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class JobContext:
    session: Session
    runtime: Runtime
    now: datetime


JobHandler = Callable[[JobContext, Sequence[ClaimedJob]], None]

_handlers: dict[str, JobHandler] = {}


def job_handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    def register(handler: JobHandler) -> JobHandler:
        if kind in _handlers and _handlers[kind] is not handler:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        _handlers[kind] = handler
        return handler

    return register


def handler_for(kind: str) -> JobHandler | None:
    return _handlers.get(kind)
