"""The score sweep: thresholds crossed by decay alone, and epochs kept near the present.

Decay moves every total continuously, so "fell below 60" (or, for negative points decaying
toward zero, "rose to 60") can happen with no event. The sweep compares each decaying model's
totals with their recorded levels, set-based, and records the crossings with the cause `time`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from sodate.scoring import live, recompute
from sodate.scoring.models import ScoreCause
from sodate.worker_types import Service, ServiceContext, sweep_workspaces

REBASE_AFTER_HALF_LIVES = 64
"""Bases grow as 2^(elapsed half-lives); past this many the epoch moves to the present."""


def _sweep_one(session: Session, workspace_id: str, now: datetime) -> int:
    crossed = 0
    for model in live.live_models(session, workspace_id):
        if model.half_life_seconds is None:
            continue
        if model.factor(now) < 2.0**-REBASE_AFTER_HALF_LIVES:
            recompute.rebase(session, model, now=now)
            model = replace(model, epoch=now)
        reached, fell = recompute.sync_levels(
            session,
            workspace_id,
            model,
            now=now,
            cause=ScoreCause.TIME,
            rising_only_above=all(rule.points > 0 for rule in model.engagement),
        )
        crossed += reached + fell
    return crossed


def _sweep(context: ServiceContext) -> int:
    return sweep_workspaces(context, live.workspaces_with_models, _sweep_one)


score_sweeper = Service(
    name="score-sweeper",
    run=_sweep,
    enabled_setting="score_sweep_enabled",
    interval_setting="score_sweep_interval_seconds",
    jitter=0.1,
)
