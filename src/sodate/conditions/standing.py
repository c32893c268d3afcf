"""What the leaves reading a contact's standing hold: a score, lifecycle stages, a consent.

`ScoreSpec` names a scoring model, the part of its score and how it is compared (only ordering
operators, on numbers a score can be compared with as shown); `LifecycleSpec` lists stages,
each a known one and at most once; `ConsentSpec` names a channel that takes consent and a
purpose.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from sodate.conditions.nodes import Node, SegmentKey, invalid
from sodate.conditions.operators import Operator, check_number
from sodate.consents.models import DEFAULT_PURPOSE, Channel
from sodate.consents.schemas import Purpose
from sodate.lifecycle.models import Stage
from sodate.scoring.decay import MAX_COMPARED

ScorePart = Literal["total", "fit", "engagement"]
SCORE_OPERATORS = frozenset(
    {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.BETWEEN}
)


class ScoreSpec(Node):
    """A contact's score in a scoring model (0 where the model gave it nothing), at `now`."""

    model: SegmentKey
    op: Operator
    value: Any = Field(default=None, validate_default=True)
    part: ScorePart = "total"

    @field_validator("op")
    @classmethod
    def _ordering(cls, op: Operator) -> Operator:
        if op not in SCORE_OPERATORS:
            allowed = ", ".join(sorted(SCORE_OPERATORS))
            raise invalid("operator", "a score is compared with one of {allowed}", allowed=allowed)
        return op

    @field_validator("value")
    @classmethod
    def _numbers(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op is None:
            return value
        if op is Operator.BETWEEN:
            if not isinstance(value, list) or len(value) != 2:
                raise invalid("value", "between needs a list of two numbers: [low, high]")
            low, high = (_score_bound(item, op) for item in value)
            if low > high:
                raise invalid("value", "between needs low <= high")
            return [low, high]
        return _score_bound(value, Operator(op))


def _score_bound(value: Any, op: Operator) -> int | float:
    # A score is compared as shown, to a hundredth of a point: the bound is moved to the edge
    # between two hundredths in `bound × 100` (`sodate.scoring.decay.MAX_COMPARED`).
    number = check_number(value, op)
    if abs(number) > MAX_COMPARED:
        raise invalid(
            "value", "a score is compared with numbers from -{most} to {most}", most="1e306"
        )
    return number


STAGES = tuple(stage.value for stage in Stage)


def _stage(value: Any) -> Any:
    # Before str validation, so that a number or an object gets the same list of stages.
    if not isinstance(value, str) or value not in STAGES:
        raise invalid(
            "stage", "not a lifecycle stage: use one of {allowed}", allowed=", ".join(STAGES)
        )
    return value


StageName = Annotated[str, BeforeValidator(_stage)]


class LifecycleSpec(Node):
    """The contact's lifecycle stage is one of these (a contact with no stage is in none)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    in_: Annotated[list[StageName], Field(min_length=1)] = Field(alias="in")

    @field_validator("in_")
    @classmethod
    def _distinct(cls, stages: list[str]) -> list[str]:
        seen: set[str] = set()
        for stage in stages:
            if stage in seen:
                raise invalid("stage", "{stage} is listed twice", stage=stage)
            seen.add(stage)
        return stages


CHANNELS = tuple(channel.value for channel in Channel)


def _channel(value: Any) -> Any:
    if not isinstance(value, str) or value not in CHANNELS:
        raise invalid(
            "channel",
            "not a channel that takes consent: use one of {allowed}",
            allowed=", ".join(CHANNELS),
        )
    return value


class ConsentSpec(Node):
    """The contact has given consent, not withdrawn since, to messages on `channel` for
    `purpose`."""

    channel: Annotated[str, BeforeValidator(_channel)]
    purpose: Purpose = DEFAULT_PURPOSE
