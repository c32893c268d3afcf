"""The condition language as a validated model (DESIGN §4.3).

A condition is a tree: `all` / `any` of conditions, `not` a condition, and leaves that test an
attribute (`attr`), a contact's events (`event`), segments (`segment`), scores (`score`), its
lifecycle stage (`lifecycle`) or its consent (`consent`). Validation names the path to every
bad node and what was expected there; nothing unknown is silently false.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from sodate.conditions import terms
from sodate.conditions.terms import ValueKind
from sodate.consents.models import DEFAULT_PURPOSE, Channel
from sodate.consents.schemas import Purpose
from sodate.errors import InvalidInput
from sodate.lifecycle.models import Stage
from sodate.scoring.decay import MAX_COMPARED

MAX_LIST_VALUES = 1000
MAX_TEXT = 1000
MAX_CHILDREN = 100
MAX_DEPTH = 12
MAX_INTEGER = 2**63 - 1


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    BETWEEN = "between"
    BEFORE = "before"
    AFTER = "after"
    WITHIN_LAST = "within_last"
    ANNIVERSARY = "anniversary"


ORDER_OPERATORS: dict[Operator, Callable[[Any, Any], Any]] = {
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
}
COUNT_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
"""What `gt` … and an event `count`'s operators compute; both evaluators apply the same ones."""

NEGATIONS = {
    Operator.NE: Operator.EQ,
    Operator.NOT_IN: Operator.IN,
    Operator.NOT_CONTAINS: Operator.CONTAINS,
    Operator.NOT_EXISTS: Operator.EXISTS,
}
"""Each negative operator holds exactly when its positive one does not (a missing value too)."""

_TEXT_OPERATORS = frozenset(
    {
        Operator.EQ,
        Operator.NE,
        Operator.IN,
        Operator.NOT_IN,
        Operator.CONTAINS,
        Operator.NOT_CONTAINS,
        Operator.STARTS_WITH,
        Operator.ENDS_WITH,
        Operator.EXISTS,
        Operator.NOT_EXISTS,
    }
)
_TIME_OPERATORS = frozenset(
    {
        Operator.BEFORE,
        Operator.AFTER,
        Operator.BETWEEN,
        Operator.WITHIN_LAST,
        Operator.EXISTS,
        Operator.NOT_EXISTS,
    }
)
OPERATORS_BY_KIND = {
    ValueKind.TEXT: _TEXT_OPERATORS,
    ValueKind.TIME: _TIME_OPERATORS,
    ValueKind.JSON: frozenset(Operator),
}

Scalar = str | int | float | bool


def _error(error_type: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(error_type, message, context or None)


class ConditionError(InvalidInput):
    """A condition that is not valid; `details` name each error's path and what was expected."""


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PathText = Annotated[str, StringConstraints(min_length=1, max_length=300)]


def _check_value(op: Operator, value: Any, kind: ValueKind) -> Any:
    if op in (Operator.EXISTS, Operator.NOT_EXISTS):
        if value is not None:
            raise _error("value", "{op} takes no value", op=op.value)
        return None
    if value is None:
        if op is Operator.ANNIVERSARY:
            return None
        raise _error("value", "{op} needs a value", op=op.value)
    if op in (Operator.EQ, Operator.NE):
        return _scalar(value, kind)
    if op in (Operator.IN, Operator.NOT_IN):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
            raise _error(
                "value",
                "{op} needs a list of 1 to {most} values",
                op=op.value,
                most=MAX_LIST_VALUES,
            )
        return [_scalar(item, kind) for item in value]
    if op in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        if kind is ValueKind.TEXT or isinstance(value, str):
            return _text(value, op)
        return _scalar(value, kind)
    if op in (Operator.STARTS_WITH, Operator.ENDS_WITH):
        return _text(value, op)
    if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
        return _number(value, op)
    if op is Operator.BETWEEN:
        return _between(value, kind)
    if op in (Operator.BEFORE, Operator.AFTER):
        return _date(value, op)
    if op is Operator.WITHIN_LAST:
        if not isinstance(value, str):
            raise _error("value", "within_last needs a duration such as 30d")
        try:
            terms.parse_positive_duration(value)
        except ValueError as exc:
            raise _error("value", str(exc)) from None
        return value
    if not isinstance(value, str):
        raise _error("value", "anniversary takes a day offset such as +3d, or no value")
    try:
        terms.parse_day_offset(value)
    except ValueError as exc:
        raise _error("value", str(exc)) from None
    return value


def _scalar(value: Any, kind: ValueKind) -> Scalar:
    if kind is ValueKind.TEXT:
        if not isinstance(value, str):
            raise _error("value", "this attribute is text: compare it with text")
        return _plain_text(value)
    if isinstance(value, str):
        return _plain_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _finite(value)
    raise _error("value", "expected text, a number or true/false")


def _plain_text(value: str) -> str:
    if len(value) > MAX_TEXT or "\x00" in value:
        raise _error("value", "text values are at most {most} characters, no NUL", most=MAX_TEXT)
    return value


def _text(value: Any, op: Operator) -> str:
    if not isinstance(value, str) or not value:
        raise _error("value", "{op} needs non-empty text", op=op.value)
    return _plain_text(value)


def _finite(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise _error("value", "numbers must be finite")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        # PostgreSQL's jsonb writes a number as its digits (1e20 as 100000000000000000000), so
        # a saved condition's float comes back as an integer beyond what SQLite binds: it is
        # taken back as that float, which compares as the same decimal (`exact_number`).
        spelled = _spelled_float(value)
        if spelled is None:
            raise _error("value", "integers must fit in 64 bits")
        return spelled
    return value


def _spelled_float(value: int) -> float | None:
    """The float whose shortest spelling is this integer's value, if there is one."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if terms.exact_number(number) == value else None


def _number(value: Any, op: Operator) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error("value", "{op} needs a number", op=op.value)
    return _finite(value)


def _date(value: Any, op: Operator) -> str:
    if not isinstance(value, str):
        raise _error("value", "{op} needs a date such as 2026-04-01 or -30d", op=op.value)
    try:
        terms.parse_date_value(value)
    except ValueError as exc:
        raise _error("value", str(exc)) from None
    return value


def _between(value: Any, kind: ValueKind) -> list[Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise _error("value", "between needs a list of two values: [low, high]")
    low, high = value
    if kind is ValueKind.JSON and not isinstance(low, str | bool) and isinstance(low, int | float):
        low, high = _number(low, Operator.BETWEEN), _number(high, Operator.BETWEEN)
        if low > high:
            raise _error("value", "between needs low <= high")
        return [low, high]
    low, high = _date(low, Operator.BETWEEN), _date(high, Operator.BETWEEN)
    first, last = terms.parse_date_value(low), terms.parse_date_value(high)
    if first.offset is not None and last.offset is not None and first.offset > last.offset:
        raise _error("value", "between needs the earlier date first")
    if first.absolute_day() and last.absolute_day() and _absolute(first) > _absolute(last):
        raise _error("value", "between needs the earlier date first")
    return [low, high]


def _absolute(value: terms.DateValue) -> str:
    if value.instant is not None and value.instant.tzinfo is not None:
        return value.instant.isoformat()
    return value.absolute_day() or ""


class AttrCondition(_Node):
    """A contact attribute: a field, a trait (path), or `company.*`."""

    attr: PathText
    op: Operator
    value: Any = Field(default=None, validate_default=True)

    @field_validator("attr")
    @classmethod
    def _known_path(cls, value: str) -> str:
        try:
            terms.attribute_path(value)
        except ValueError as exc:
            raise _error("path", str(exc)) from None
        return value

    @field_validator("op")
    @classmethod
    def _operator_fits_attribute(cls, op: Operator, info: ValidationInfo) -> Operator:
        attr = info.data.get("attr")
        if attr is None:
            return op
        kind = terms.attribute_path(attr).kind
        if op not in OPERATORS_BY_KIND[kind]:
            allowed = ", ".join(sorted(OPERATORS_BY_KIND[kind]))
            raise _error(
                "operator",
                "{attr} holds {kind}: use one of {allowed}",
                attr=attr,
                kind=kind.value,
                allowed=allowed,
            )
        return op

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        op, attr = info.data.get("op"), info.data.get("attr")
        if op is None or attr is None:
            return value
        return _check_value(Operator(op), value, terms.attribute_path(attr).kind)

    @property
    def path(self) -> terms.AttributePath:
        return terms.attribute_path(self.attr)


class PropFilter(_Node):
    """A property of an event, by path (`path`, `plan.name`)."""

    prop: PathText
    op: Operator
    value: Any = Field(default=None, validate_default=True)

    @field_validator("prop")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        try:
            terms.split_path(value)
        except ValueError as exc:
            raise _error("path", str(exc)) from None
        return value

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op is None:
            return value
        return _check_value(Operator(op), value, ValueKind.JSON)

    @property
    def path(self) -> tuple[str, ...]:
        return terms.split_path(self.prop)


CountOperator = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class EventCount(_Node):
    op: CountOperator = "gte"
    value: Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)] = 1

    @property
    def ceiling(self) -> int:
        """The fewest events that compare like any more: counting can stop there."""
        return self.value if self.op in ("gte", "lt") else self.value + 1


class EventSpec(_Node):
    """How many of a contact's events of one name (matching `where`, in the window) there are."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    where: Annotated[list[PropFilter], Field(max_length=MAX_CHILDREN)] = []
    count: EventCount = EventCount()
    within: str | None = None
    """Only events in the last span of time (`30d`, `12h`)."""

    @field_validator("within")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                terms.parse_positive_duration(value)
            except ValueError as exc:
                raise _error("duration", str(exc)) from None
        return value


class EventCondition(_Node):
    event: EventSpec


SegmentKey = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class SegmentCondition(_Node):
    """The contact is a member of another segment (by key)."""

    segment: SegmentKey


ScorePart = Literal["total", "fit", "engagement"]
SCORE_OPERATORS = frozenset(
    {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.BETWEEN}
)


class ScoreSpec(_Node):
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
            raise _error("operator", "a score is compared with one of {allowed}", allowed=allowed)
        return op

    @field_validator("value")
    @classmethod
    def _numbers(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op is None:
            return value
        if op is Operator.BETWEEN:
            if not isinstance(value, list) or len(value) != 2:
                raise _error("value", "between needs a list of two numbers: [low, high]")
            low, high = (_score_bound(item, op) for item in value)
            if low > high:
                raise _error("value", "between needs low <= high")
            return [low, high]
        return _score_bound(value, Operator(op))


def _score_bound(value: Any, op: Operator) -> int | float:
    # A score is compared as shown, to a hundredth of a point: the bound is moved to the edge
    # between two hundredths in `bound × 100` (`sodate.scoring.decay.MAX_COMPARED`).
    number = _number(value, op)
    if abs(number) > MAX_COMPARED:
        raise _error(
            "value", "a score is compared with numbers from -{most} to {most}", most="1e306"
        )
    return number


class ScoreCondition(_Node):
    score: ScoreSpec


STAGES = tuple(stage.value for stage in Stage)


def _stage(value: Any) -> Any:
    # Before str validation, so that a number or an object gets the same list of stages.
    if not isinstance(value, str) or value not in STAGES:
        raise _error(
            "stage", "not a lifecycle stage: use one of {allowed}", allowed=", ".join(STAGES)
        )
    return value


StageName = Annotated[str, BeforeValidator(_stage)]


class LifecycleSpec(_Node):
    """The contact's lifecycle stage is one of these (a contact with no stage is in none)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    in_: Annotated[list[StageName], Field(min_length=1)] = Field(alias="in")

    @field_validator("in_")
    @classmethod
    def _distinct(cls, stages: list[str]) -> list[str]:
        seen: set[str] = set()
        for stage in stages:
            if stage in seen:
                raise _error("stage", "{stage} is listed twice", stage=stage)
            seen.add(stage)
        return stages


class LifecycleCondition(_Node):
    lifecycle: LifecycleSpec


CHANNELS = tuple(channel.value for channel in Channel)


def _channel(value: Any) -> Any:
    if not isinstance(value, str) or value not in CHANNELS:
        raise _error(
            "channel",
            "not a channel that takes consent: use one of {allowed}",
            allowed=", ".join(CHANNELS),
        )
    return value


class ConsentSpec(_Node):
    """The contact has given consent, not withdrawn since, to messages on `channel` for
    `purpose`."""

    channel: Annotated[str, BeforeValidator(_channel)]
    purpose: Purpose = DEFAULT_PURPOSE


class ConsentCondition(_Node):
    consent: ConsentSpec


class AllCondition(_Node):
    all: Annotated[list[Condition], Field(min_length=1, max_length=MAX_CHILDREN)]


class AnyCondition(_Node):
    any: Annotated[list[Condition], Field(min_length=1, max_length=MAX_CHILDREN)]


class NotCondition(_Node):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    not_: Condition = Field(alias="not")


KINDS = ("all", "any", "not", "attr", "event", "segment", "score", "lifecycle", "consent")
# Pydantic puts a union member's tag into error paths; these spellings cannot be field names,
# so they can be taken out again (`error_path`).
_TAGS = {kind: f"<{kind}>" for kind in KINDS}
_TAG_NAMES = frozenset(_TAGS.values())


def _kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return _TAGS[_MODEL_KIND[type(value)]]
    if isinstance(value, dict):
        present = [kind for kind in KINDS if kind in value]
        if len(present) == 1:
            return _TAGS[present[0]]
    return None


Condition = Annotated[
    Union[  # noqa: UP007 (a union of annotated members needs the Union spelling)
        Annotated[AllCondition, Tag(_TAGS["all"])],
        Annotated[AnyCondition, Tag(_TAGS["any"])],
        Annotated[NotCondition, Tag(_TAGS["not"])],
        Annotated[AttrCondition, Tag(_TAGS["attr"])],
        Annotated[EventCondition, Tag(_TAGS["event"])],
        Annotated[SegmentCondition, Tag(_TAGS["segment"])],
        Annotated[ScoreCondition, Tag(_TAGS["score"])],
        Annotated[LifecycleCondition, Tag(_TAGS["lifecycle"])],
        Annotated[ConsentCondition, Tag(_TAGS["consent"])],
    ],
    Discriminator(
        _kind,
        custom_error_type="condition",
        custom_error_message="expected a condition: an object with exactly one of "
        + ", ".join(KINDS),
    ),
]
_MODEL_KIND: dict[type[BaseModel], str] = {
    AllCondition: "all",
    AnyCondition: "any",
    NotCondition: "not",
    AttrCondition: "attr",
    EventCondition: "event",
    SegmentCondition: "segment",
    ScoreCondition: "score",
    LifecycleCondition: "lifecycle",
    ConsentCondition: "consent",
}
for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()

_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


def parse_condition(document: Any) -> Condition:
    """The condition a JSON document describes, or ConditionError naming every error."""
    check_depth(document)
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise ConditionError("the condition is not valid", details=error_details(exc)) from None


def check_depth(document: Any, *, at: Sequence[int | str] = ()) -> None:
    """Refuse a document nested deeper than a condition may be, before validating it; the
    error's `loc` is the path to the first value beyond the limit, after `at` (where the
    condition is in the document holding it)."""
    found = _too_deep(document)
    if found is not None:
        path = [*at, *found]
        where = ".".join(str(part) for part in path)
        raise ConditionError(
            f"the condition nests more than {MAX_DEPTH} levels deep, at {where}",
            details=[
                {
                    "loc": path,
                    "msg": f"too deeply nested: at most {MAX_DEPTH} levels",
                    "type": "depth",
                }
            ],
        )


def bounded(data: Any, key: str) -> Any:
    """For a `mode="before"` validator of a document holding a condition at `key`: refuse one
    nested too deep, as a ValueError, so that pydantic names the document; the message names
    the path in it."""
    if isinstance(data, dict):
        try:
            check_depth(data.get(key), at=[key])
        except ConditionError as exc:
            raise ValueError(exc.message) from None
    return data


def error_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": error_path(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False)
    ]


def error_path(loc: Sequence[int | str]) -> list[int | str]:
    """An error's location without the union tags pydantic adds at each condition."""
    return [part for part in loc if part not in _TAG_NAMES]


def _too_deep(document: Any) -> list[int | str] | None:
    """The path to the first value, in document order, more than `MAX_DEPTH` levels deep (the
    document is the first level, each object's values one more); None if there is none.
    Iterative: the document may be nested beyond any recursion limit."""
    stack: list[tuple[Any, int, tuple[int | str, ...]]] = [(document, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return list(path)
        if isinstance(value, dict):
            children: list[tuple[int | str, Any]] = list(value.items())
            depth += 1
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        # Reversed, so that the first child is looked at first.
        stack.extend((child, depth, (*path, key)) for key, child in reversed(children))
    return None


def dump_condition(condition: Condition) -> dict[str, Any]:
    """The JSON document of a condition, as it was written (`not` included)."""
    return _ADAPTER.dump_python(condition, by_alias=True, exclude_unset=True, mode="json")  # type: ignore[no-any-return]
