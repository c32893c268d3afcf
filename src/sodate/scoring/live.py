"""A saved scoring model ready to apply: its rules, its decay and its thresholds."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.schemas import Condition, PropFilter
from sodate.scoring.decay import SECONDS_A_DAY, decay_factor, decay_weight, threshold_bound
from sodate.scoring.models import ScoringModel
from sodate.scoring.schemas import ScoringModelIn

MODELS: sa.Table = ScoringModel.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class FitPoints:
    rule: str
    condition: Condition
    points: int


@dataclass(frozen=True)
class EngagementPoints:
    rule: str
    event: str
    where: tuple[PropFilter, ...]
    points: int
    max_per_day: int | None
    max_total: int | None


@dataclass(frozen=True)
class LiveModel:
    id: int
    key: str
    epoch: datetime
    half_life_seconds: float | None
    """None: engagement does not decay."""
    fit: tuple[FitPoints, ...]
    engagement: tuple[EngagementPoints, ...]
    thresholds: tuple[tuple[float, str], ...]
    """(value, name), lowest first."""

    @classmethod
    def of(cls, id: int, key: str, epoch: datetime, definition: ScoringModelIn) -> LiveModel:
        return cls(
            id=id,
            key=key,
            epoch=epoch,
            half_life_seconds=(
                definition.decay.half_life_days * SECONDS_A_DAY if definition.decay else None
            ),
            fit=tuple(
                FitPoints(f"fit.{i}", rule.when, rule.points)
                for i, rule in enumerate(definition.fit)
            ),
            engagement=tuple(
                EngagementPoints(
                    f"engagement.{i}",
                    rule.event,
                    tuple(rule.where),
                    rule.points,
                    rule.max_per_day,
                    rule.max_total,
                )
                for i, rule in enumerate(definition.engagement)
            ),
            thresholds=tuple(
                sorted((value, name) for name, value in definition.thresholds.items())
            ),
        )

    @property
    def half_life_days(self) -> float | None:
        if self.half_life_seconds is None:
            return None
        return self.half_life_seconds / SECONDS_A_DAY

    def weight(self, at: datetime) -> float:
        """What an award at `at` weighs in the base."""
        return decay_weight(at, self.epoch, self.half_life_seconds)

    def factor(self, now: datetime) -> float:
        """What the base is multiplied by to give the engagement at `now`."""
        return decay_factor(now, self.epoch, self.half_life_seconds)

    def engagement_at(self, base: float, now: datetime) -> float:
        return base * self.factor(now)

    @cached_property
    def _bounds(self) -> list[float]:
        """The least total that has reached each threshold, as shown (`threshold_bound`)."""
        return [threshold_bound(value) for value, _name in self.thresholds]

    def level(self, total: float) -> int:
        """How many thresholds `total` has reached."""
        return bisect_right(self._bounds, total)

    def crossed(self, before: int, after: int) -> list[tuple[float, str]]:
        """The thresholds between two levels, in the order they were passed."""
        if after == before:
            return []
        if after > before:
            return list(self.thresholds[before:after])
        return list(reversed(self.thresholds[after:before]))


def live_models(session: Session, workspace_id: str) -> list[LiveModel]:
    rows = session.execute(
        sa.select(MODELS.c.id, MODELS.c.key, MODELS.c.epoch, MODELS.c.definition)
        .where(MODELS.c.workspace_id == workspace_id)
        .order_by(MODELS.c.key)
    ).all()
    return [
        LiveModel.of(id, key, epoch, ScoringModelIn.model_validate(definition))
        for id, key, epoch, definition in rows
    ]


def workspaces_with_models(session: Session) -> list[str]:
    return list(session.execute(sa.select(MODELS.c.workspace_id).distinct()).scalars())


def rounded(value: float) -> float:
    """Scores as shown: to a hundredth of a point."""
    return round(value, 2) + 0.0
