"""The segment sweep: a background service that moves members as time passes.

Real-time updates follow events; "no purchase within 90 days" changes with no event at all.
The sweep recomputes, set-based, every segment whose condition reads the clock (and those that
read such a segment), recording the entries and exits with the cause `time`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sodate.segments import membership
from sodate.worker_types import Service, ServiceContext, sweep_workspaces
from sodate.workspaces.service import workspace_zone


def _sweep_one(session: Session, workspace_id: str, now: datetime) -> int:
    zone = workspace_zone(session, workspace_id)
    return membership.sweep(session, workspace_id, now=now, zone=zone)


def _sweep(context: ServiceContext) -> int:
    return sweep_workspaces(context, membership.workspaces_with_clock_segments, _sweep_one)


segment_sweeper = Service(
    name="segment-sweeper",
    run=_sweep,
    enabled_setting="segment_sweep_enabled",
    interval_setting="segment_sweep_interval_seconds",
    jitter=0.1,
)
