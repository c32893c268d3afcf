"""Background services of workspaces."""

from __future__ import annotations

from sodate.worker_types import Service, ServiceContext
from sodate.workspaces import auth


def _delete_expired_sessions(context: ServiceContext) -> int:
    runtime = context.runtime
    with runtime.db.transaction() as session:
        return auth.delete_expired_sessions(session, now=runtime.clock.now())


session_cleaner = Service(
    name="session-cleaner",
    run=_delete_expired_sessions,
    enabled_setting="maintenance_enabled",
    interval_setting="maintenance_interval_seconds",
)
