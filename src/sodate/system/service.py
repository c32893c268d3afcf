"""Clock control and service heartbeats."""

from __future__ import annotations

import traceback
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.clock import ManualClock, parse_duration
from sodate.errors import Conflict, InvalidInput
from sodate.queue.runner import drain_due_jobs
from sodate.runtime import Runtime
from sodate.system.models import ServiceHeartbeat

MAX_ERROR_CHARS = 4000


def advance_clock(
    runtime: Runtime, *, by: str | None = None, to: datetime | None = None, worker_id: str
) -> tuple[datetime, int]:
    """Move the manual clock, then run every job and timer that fell due; return (now, ran)."""
    clock = runtime.clock
    if not isinstance(clock, ManualClock):
        raise Conflict("the clock is the system clock; only SODATE_CLOCK=manual may be advanced")
    if by is not None and to is None:
        now = clock.advance(parse_duration(by))
    elif to is not None and by is None:
        now = clock.set(to)
    else:
        raise InvalidInput("give exactly one of a duration or an instant")
    return now, drain_due_jobs(runtime, worker_id=worker_id)


def record_heartbeat(
    session: Session,
    *,
    worker_id: str,
    service: str,
    started_at: datetime,
    now: datetime,
    passes: int,
    failures: int,
    error: BaseException | None,
) -> None:
    values: dict[str, object] = {"beat_at": now, "passes": passes, "failures": failures}
    if error is not None:
        text = "".join(traceback.format_exception(error))[-MAX_ERROR_CHARS:]
        values.update(last_error=text, last_error_at=now)
    updated = session.execute(
        sa.update(ServiceHeartbeat)
        .where(ServiceHeartbeat.worker_id == worker_id, ServiceHeartbeat.service == service)
        .values(**values)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.add(
            ServiceHeartbeat(worker_id=worker_id, service=service, started_at=started_at, **values)
        )
        session.flush()


def prune_heartbeats(session: Session, *, older_than: datetime) -> int:
    result = session.execute(
        sa.delete(ServiceHeartbeat).where(ServiceHeartbeat.beat_at < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def check_database(session: Session) -> None:
    session.execute(sa.text("SELECT 1"))
