"""The workspace processing lock: one writer of a workspace's derived state at a time.

The event processor, model and segment saves, and the sweeps all take it, so each contact's
events are applied in order and no two of them resolve or rescore the same people at once.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from sqlalchemy.orm import Session


def lock_workspace(session: Session, workspace_id: str, *, wait: bool = False) -> bool:
    """Take the workspace's processing lock until the transaction ends; False if it is held.

    SQLite needs none: its write transactions are already exclusive. PostgreSQL's advisory
    locks stack within a transaction, so taking it again is free.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = zlib.crc32(f"sodate-events:{workspace_id}".encode())
    if wait:
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        return True
    return bool(session.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key))).scalar())
