"""Time, injected: every part of Sodate asks a clock for the current time.

The system clock is the real time. The manual clock (`SODATE_CLOCK=manual`) stands still until it
is advanced; its time is a row in the database, so the server, the workers and the CLI all see the
same instant, and an advance from any of them moves everyone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base
from sodate.db.engine import Database
from sodate.db.statements import insert_ignoring_conflicts
from sodate.errors import InvalidInput

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


class ClockError(InvalidInput):
    """A clock operation that is not allowed or not understood."""


class ClockState(Base):
    __tablename__ = "clock_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    now: Mapped[datetime]


CLOCK_STATE: sa.Table = ClockState.__table__  # type: ignore[assignment]


class Clock(Protocol):
    @property
    def is_manual(self) -> bool: ...

    def now(self) -> datetime: ...


class SystemClock:
    is_manual = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to. It starts at `start` (default: the real time)."""

    is_manual = True

    def __init__(self, db: Database, *, start: datetime | None = None) -> None:
        self._db = db
        self._start = start

    def start(self) -> None:
        """Create the clock's row if the schema exists, so reading the time never writes."""
        try:
            self.now()
        except DBAPIError:
            return

    def now(self) -> datetime:
        with self._db.read() as session:
            current = session.scalar(sa.select(ClockState.now).where(ClockState.id == 1))
        if current is not None:
            return current
        with self._db.transaction() as session:
            return self._locked_state(session).now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ClockError("the clock only moves forward")
        with self._db.transaction() as session:
            state = self._locked_state(session)
            state.now = state.now + delta
            return state.now

    def set(self, instant: datetime) -> datetime:
        with self._db.transaction() as session:
            state = self._locked_state(session)
            if instant < state.now:
                raise ClockError("the clock only moves forward")
            state.now = instant.astimezone(UTC)
            return state.now

    def _locked_state(self, session: sa.orm.Session) -> ClockState:
        # Several processes may start at once: the first row wins and everyone reads it.
        insert_ignoring_conflicts(
            session,
            CLOCK_STATE,
            [{"id": 1, "now": self._start or datetime.now(UTC)}],
            conflict_columns=("id",),
        )
        state = session.scalar(sa.select(ClockState).where(ClockState.id == 1).with_for_update())
        assert state is not None
        return state


def parse_duration(text: str) -> timedelta:
    """Parse `3d`, `2h30m`, `1w`, `90s` (units w, d, h, m, s; parts may repeat)."""
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ClockError("empty duration")
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        position = match.end()
    if position != len(compact):
        raise ClockError(f"invalid duration {text!r}: use e.g. 3d, 2h30m, 1w, 90s")
    return timedelta(seconds=total)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; one without an offset is refused rather than guessed."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ClockError(
            f"invalid time {text!r}: use ISO 8601, e.g. 2026-04-01T09:00:00+09:00"
        ) from exc
    if value.tzinfo is None:
        raise ClockError(f"time {text!r} has no UTC offset")
    return value.astimezone(UTC)
