"""The lifecycle sweep: stages that time alone changes.

Inactivity makes contacts dormant, then churned, with no event at all; decay and model saves
cross score thresholds outside event processing; rules may read the clock. The sweep applies
those rules to each workspace that has any, set-based, as the rules' own save does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sodate.lifecycle import service
from sodate.worker_types import Service, ServiceContext, sweep_workspaces


def _sweep_one(session: Session, workspace_id: str, now: datetime) -> int:
    return service.sweep(session, workspace_id, now=now)


def _sweep(context: ServiceContext) -> int:
    return sweep_workspaces(context, service.workspaces_with_rules, _sweep_one)


lifecycle_sweeper = Service(
    name="lifecycle-sweeper",
    run=_sweep,
    enabled_setting="lifecycle_sweep_enabled",
    interval_setting="lifecycle_sweep_interval_seconds",
    jitter=0.1,
)
