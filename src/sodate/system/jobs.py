"""Background services of the system capability."""

from __future__ import annotations

from datetime import timedelta

from sodate.system import service
from sodate.worker_types import Service, ServiceContext

HEARTBEAT_RETENTION = timedelta(days=1)


def _prune_heartbeats(context: ServiceContext) -> int:
    runtime = context.runtime
    with runtime.db.transaction() as session:
        return service.prune_heartbeats(
            session, older_than=runtime.clock.now() - HEARTBEAT_RETENTION
        )


heartbeat_pruner = Service(
    name="heartbeat-pruner",
    run=_prune_heartbeats,
    enabled_setting="maintenance_enabled",
    interval_setting="maintenance_interval_seconds",
)


INBOX_KEPT_FREE_BYTES = 10 * 2**20
"""Free pages SQLite's inbox file keeps for the next requests; the checkpointer gives the rest
back to the file system, `INBOX_RELEASED_AT_ONCE_BYTES` at a pass."""
INBOX_RELEASED_AT_ONCE_BYTES = 10 * 2**20


def _checkpoint(context: ServiceContext) -> int:
    runtime = context.runtime
    runtime.db.checkpoint()
    if runtime.inbox is not runtime.db:
        runtime.inbox.release_free_pages(
            keep_bytes=INBOX_KEPT_FREE_BYTES, most_bytes=INBOX_RELEASED_AT_ONCE_BYTES
        )
        runtime.inbox.checkpoint()
    return 0  # never drains: the next pass comes on the interval


wal_checkpointer = Service(
    name="wal-checkpointer",
    run=_checkpoint,
    enabled_setting="maintenance_enabled",
    interval_setting="sqlite_checkpoint_interval_seconds",
    jitter=0.0,
)
