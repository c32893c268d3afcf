"""The segment sweep: a background service that moves members as time passes.

Real-time updates follow events; "no purchase within 90 days" changes with no event at all.
The sweep recomputes, set-based, every segment whose condition reads the clock (and those that
read such a segment), recording the entries and exits with the cause `time`.
"""

from __future__ import annotations

from sodate.db.locks import lock_workspace
from sodate.segments import membership
from sodate.worker_types import Service, ServiceContext
from sodate.workspaces.service import workspace_zone


def _sweep(context: ServiceContext) -> int:
    runtime = context.runtime
    with runtime.db.read() as session:
        workspace_ids = membership.workspaces_with_clock_segments(session)
    moved = 0
    for workspace_id in workspace_ids:
        now = runtime.clock.now()
        with runtime.db.transaction() as session:
            lock_workspace(session, workspace_id, wait=True)
            zone = workspace_zone(session, workspace_id)
            moved += membership.sweep(session, workspace_id, now=now, zone=zone)
    return moved


segment_sweeper = Service(
    name="segment-sweeper",
    run=_sweep,
    enabled_setting="segment_sweep_enabled",
    interval_setting="segment_sweep_interval_seconds",
    jitter=0.1,
)
