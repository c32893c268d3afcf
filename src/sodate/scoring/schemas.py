"""Scoring models as files and the admin API take them (DESIGN §4.2), and scores as shown."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from sodate.conditions.reads import nodes, reads, reads_zone
from sodate.conditions.schemas import (
    MAX_CHILDREN,
    Condition,
    ConsentCondition,
    EventCondition,
    LifecycleCondition,
    PropFilter,
    SegmentCondition,
    bounded,
)
from sodate.scoring.decay import MAX_BOUND

MAX_RULES = 200
MAX_POINTS = 1_000_000
MAX_THRESHOLDS = 20

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Key = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=KEY_PATTERN)]


def _not_zero(points: int) -> int:
    if points == 0:
        raise ValueError("a rule gives points: use a number other than 0")
    return points


Points = Annotated[
    int, Field(ge=-MAX_POINTS, le=MAX_POINTS, strict=True), AfterValidator(_not_zero)
]
Cap = Annotated[int, Field(ge=1, le=MAX_POINTS, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FitRule(_Strict):
    """Points while the contact's attributes (its own or its company's) satisfy `when`."""

    when: Condition
    points: Points

    @model_validator(mode="before")
    @classmethod
    def _bounded_nesting(cls, data: Any) -> Any:
        return bounded(data, "when")

    @field_validator("when")
    @classmethod
    def _attributes_only(cls, when: Condition) -> Condition:
        for _path, node in nodes(when):
            if isinstance(
                node, EventCondition | SegmentCondition | LifecycleCondition | ConsentCondition
            ):
                raise ValueError(
                    "fit rules read attributes only (the contact's and its company's);"
                    " score events with engagement rules"
                )
        if reads(when).clock:
            raise ValueError(
                "fit rules cannot read the clock (within_last, relative dates, anniversaries):"
                " a fit score changes when attributes change"
            )
        return when


class EngagementRule(_Strict):
    """Points each time the contact does `event` (matching `where`), within the caps."""

    event: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    where: Annotated[list[PropFilter], Field(max_length=MAX_CHILDREN)] = []
    points: Points
    max_per_day: Cap | None = None
    """At most this many points (in absolute value) from this rule on one day."""
    max_total: Cap | None = None
    """At most this many points (in absolute value) from this rule ever."""

    @field_validator("where")
    @classmethod
    def _no_clock(cls, where: list[PropFilter]) -> list[PropFilter]:
        for item in where:
            if reads_zone(item):
                raise ValueError(
                    "points are given when the event happens: a filter cannot read the clock"
                )
        return where


class Decay(_Strict):
    half_life_days: Annotated[float, Field(ge=1, le=36_500)]
    """Engagement points lose half their value in this many days; fit points do not decay."""


class ScoringModelIn(_Strict):
    """`PUT /api/v1/scoring-models/{key}`: the model document without its key."""

    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    fit: Annotated[list[FitRule], Field(max_length=MAX_RULES)] = []
    engagement: Annotated[list[EngagementRule], Field(max_length=MAX_RULES)] = []
    decay: Decay | None = None
    thresholds: dict[Key, float] = {}
    """Named totals (`mql: 60`); reaching one is recorded as a crossing, falling back too."""

    @field_validator("thresholds")
    @classmethod
    def _finite(cls, thresholds: dict[str, float]) -> dict[str, float]:
        if len(thresholds) > MAX_THRESHOLDS:
            raise ValueError(f"at most {MAX_THRESHOLDS} thresholds")
        for name, value in thresholds.items():
            if not math.isfinite(value) or abs(value) > MAX_BOUND:
                raise ValueError(
                    f"threshold {name!r} must be a number from -{MAX_BOUND:,} to {MAX_BOUND:,}"
                )
        return thresholds

    @model_validator(mode="after")
    def _has_rules(self) -> ScoringModelIn:
        if not self.fit and not self.engagement:
            raise ValueError("a model needs at least one fit or engagement rule")
        return self


class ScoringModelDocument(ScoringModelIn):
    """One model of a file for `sodate scoring apply`: the PUT body and its key."""

    key: Key


class ScoringModelOut(BaseModel):
    key: str
    name: str
    description: str | None
    fit: list[dict[str, Any]]
    engagement: list[dict[str, Any]]
    decay: dict[str, Any] | None
    thresholds: dict[str, float]
    scored_contacts: int
    created_at: datetime
    updated_at: datetime
    computed_at: datetime | None


class ScoringModelSaved(BaseModel):
    model: ScoringModelOut
    reached: int
    """Threshold crossings upward that the recomputation found."""
    fell: int


class ScoringModelApplied(BaseModel):
    key: str
    created: bool
    scored_contacts: int
    reached: int
    fell: int


class ScoreReason(BaseModel):
    rule: str
    """`fit.N` or `engagement.N`: the rule's place in the model."""
    description: str
    """What the rule rewards: its event, or its condition."""
    points: float
    """What the rule contributes now (engagement after decay)."""
    awarded: float
    """Points the rule gave, before decay."""


class ModelScore(BaseModel):
    fit: float
    engagement: float
    total: float
    thresholds_reached: list[str]
    reasons: list[ScoreReason]


class ScoreSummary(BaseModel):
    """A contact's score in one model, as the contact's representation shows it."""

    fit: float
    engagement: float
    total: float


class HistoryPoint(BaseModel):
    id: int
    at: datetime
    fit: float
    engagement: float
    """At `at`; until the next point it decays with the model's half-life."""
    total: float
    cause: str


class HistoryPage(BaseModel):
    items: list[HistoryPoint]
    next_cursor: str | None


class CrossingOut(BaseModel):
    id: int
    model: str
    contact_id: int
    threshold: str
    value: float
    reached: bool
    total: float
    cause: str
    at: datetime


class CrossingPage(BaseModel):
    items: list[CrossingOut]
    next_cursor: str | None
