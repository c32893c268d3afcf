"""The runtime every entry point builds once: settings, database and clock."""

from __future__ import annotations

from dataclasses import dataclass

from sodate.clock import Clock, ManualClock, SystemClock, parse_instant
from sodate.db.engine import Database
from sodate.settings import ClockMode, Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    secret_key: str

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        secret_key = settings.resolved_secret_key()
        db = Database.from_url(settings.resolved_database_url)
        clock: Clock
        if settings.clock is ClockMode.MANUAL:
            start = parse_instant(settings.clock_start) if settings.clock_start else None
            clock = ManualClock(db, start=start)
            clock.start()
        else:
            clock = SystemClock()
        return cls(settings=settings, db=db, clock=clock, secret_key=secret_key)

    def close(self) -> None:
        self.db.dispose()
