"""The lifecycle sweep: stages that time alone changes.

Inactivity makes contacts dormant, then churned, with no event at all; decay and model saves
cross score thresholds outside event processing; rules may read the clock. The sweep applies
those rules to each workspace that has any, set-based, as the rules' own save does.
"""

from __future__ import annotations

from sodate.db.locks import lock_workspace
from sodate.lifecycle import service
from sodate.worker_types import Service, ServiceContext


def _sweep(context: ServiceContext) -> int:
    runtime = context.runtime
    with runtime.db.read() as session:
        workspace_ids = service.workspaces_with_rules(session)
    moved = 0
    for workspace_id in workspace_ids:
        now = runtime.clock.now()
        with runtime.db.transaction() as session:
            lock_workspace(session, workspace_id, wait=True)
            moved += service.sweep(session, workspace_id, now=now)
    return moved


lifecycle_sweeper = Service(
    name="lifecycle-sweeper",
    run=_sweep,
    enabled_setting="lifecycle_sweep_enabled",
    interval_setting="lifecycle_sweep_interval_seconds",
    jitter=0.1,
)
