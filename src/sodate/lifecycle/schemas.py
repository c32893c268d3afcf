"""The lifecycle document (a workspace's rules), stage changes as given and shown."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sodate.conditions.reads import reads
from sodate.conditions.schemas import Condition, ConditionError, check_depth, dump_condition
from sodate.lifecycle.models import PROGRESSION, Stage

MAX_INACTIVE_DAYS = 36_500
ProgressionStage = Annotated[
    Stage, Field(description="One of " + ", ".join(stage.value for stage in PROGRESSION))
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqlRule(_Strict):
    """The contact becomes MQL when its total in `model` reaches `threshold` (once per cycle)."""

    model: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    threshold: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "mql"


class InactivityRule(_Strict):
    """After this many days with no activity (no event; never seen: since added), the contact
    moves to the rule's stage, from any of `from` (all ordered stages when left out)."""

    after_days: Annotated[int, Field(ge=1, le=MAX_INACTIVE_DAYS, strict=True)]
    from_: Annotated[list[ProgressionStage], Field(alias="from", min_length=1)] = list(PROGRESSION)

    @model_validator(mode="after")
    def _distinct(self) -> InactivityRule:
        if len(set(self.from_)) != len(self.from_):
            raise ValueError("`from` names a stage twice")
        if not set(self.from_) <= set(PROGRESSION):
            raise ValueError("`from` takes ordered stages only: " + _names(PROGRESSION))
        return self


def _rule_stage(stage: Stage) -> Stage:
    if stage is Stage.MQL:
        raise ValueError("MQL comes from a score threshold: set `mql` instead of a rule")
    if stage in (Stage.DORMANT, Stage.CHURNED):
        raise ValueError(f"{stage.value} comes from inactivity: set `{stage.value}` instead")
    return stage


def _depth_checked(condition: Any) -> Any:
    try:
        check_depth(condition)
    except ConditionError as exc:
        raise ValueError(exc.message) from None
    return condition


def _reads_no_stage(condition: Condition) -> Condition:
    if reads(condition).lifecycle:
        raise ValueError("a rule cannot read the lifecycle stage")
    return condition


# As types of the rules' keys and values, so that each error is named by its rule's path.
RuleStage = Annotated[Stage, AfterValidator(_rule_stage)]
RuleCondition = Annotated[
    Condition, BeforeValidator(_depth_checked), AfterValidator(_reads_no_stage)
]


class LifecycleRulesIn(_Strict):
    """`PUT /api/v1/lifecycle`: how contacts move along the stages without anyone moving them.

    `rules` maps an ordered stage to a condition: a contact that satisfies it moves forward to
    that stage (never back). MQL comes from a score threshold instead (`mql`).
    """

    rules: dict[RuleStage, RuleCondition] = {}
    mql: MqlRule | None = None
    dormant: InactivityRule | None = None
    churned: InactivityRule | None = None

    @field_validator("churned")
    @classmethod
    def _after_dormant(
        cls, churned: InactivityRule | None, info: ValidationInfo
    ) -> InactivityRule | None:
        dormant = info.data.get("dormant")
        if churned and dormant and churned.after_days <= dormant.after_days:
            raise ValueError(
                f"after_days must be more than dormant's ({dormant.after_days}): a contact is"
                " dormant before it is churned"
            )
        return churned

    def ordered_rules(self) -> list[tuple[Stage, Condition]]:
        """The rules from the furthest stage back, so a contact jumps to the furthest it meets."""
        return sorted(self.rules.items(), key=lambda item: -PROGRESSION.index(item[0]))


class LifecycleRulesOut(BaseModel):
    rules: dict[Stage, dict[str, Any]] = {}
    """Each rule's condition, as written."""
    mql: MqlRule | None = None
    dormant: InactivityRule | None = None
    churned: InactivityRule | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, rules: LifecycleRulesIn, updated_at: datetime) -> LifecycleRulesOut:
        return cls(
            rules={stage: dump_condition(condition) for stage, condition in rules.rules.items()},
            mql=rules.mql,
            dormant=rules.dormant,
            churned=rules.churned,
            updated_at=updated_at,
        )

    def document(self) -> dict[str, Any]:
        """The rules as stored and as a file holds them."""
        return self.model_dump(
            mode="json", by_alias=True, exclude={"updated_at"}, exclude_none=True
        )


class StageCount(BaseModel):
    stage: Stage
    contacts: int


class StageChangeIn(_Strict):
    """`PUT /api/v1/contacts/{id}/stage`: move a contact by hand, to any stage."""

    stage: Stage
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ContactStageOut(BaseModel):
    stage: Stage
    since: datetime
    resume_stage: Stage | None
    """Dormant or churned: the stage activity brings the contact back to."""
    cycle_started_at: datetime | None
    """When the contact was last sent back below MQL (recycled); None: never."""


class StageChangeOut(BaseModel):
    id: int
    contact_id: int
    from_stage: Stage | None = Field(serialization_alias="from")
    to_stage: Stage = Field(serialization_alias="to")
    source: str
    """`rule`, `user` or `api`."""
    rule: str | None
    user_id: int | None
    api_key_id: int | None
    reason: str | None
    at: datetime


class StageChangePage(BaseModel):
    items: list[StageChangeOut]
    next_cursor: int | None


class RulesApplied(BaseModel):
    """What saving the rules did: contacts moved, per stage reached."""

    rules: LifecycleRulesOut
    moved: dict[str, int]


def _names(stages: tuple[Stage, ...]) -> str:
    return ", ".join(stage.value for stage in stages)
