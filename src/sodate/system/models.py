"""Heartbeats: each background service of each worker process says when it last ran."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base


class ServiceHeartbeat(Base):
    __tablename__ = "service_heartbeats"

    worker_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    service: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime] = mapped_column(index=True)
    passes: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[datetime | None]
