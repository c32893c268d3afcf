"""The condition language as a validated model (DESIGN §4.3).

A condition is a tree: `all` / `any` of conditions, `not` a condition, and leaves that test an
attribute (`attr`), a contact's events (`event`), segments (`segment`), scores (`score`), its
lifecycle stage (`lifecycle`) or its consent (`consent`). Validation names the path to every
bad node and what was expected there; nothing unknown is silently false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
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

from sodate.conditions import terms
from sodate.conditions.nodes import Node, PathText, SegmentKey, invalid
from sodate.conditions.operators import OPERATORS_BY_KIND, check_value
from sodate.conditions.operators import Operator as Operator  # the models' `op`, exported
from sodate.conditions.standing import ConsentSpec, LifecycleSpec, ScoreSpec
from sodate.conditions.terms import ValueKind
from sodate.errors import InvalidInput

MAX_CHILDREN = 100
MAX_DEPTH = 12


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


class ConditionError(InvalidInput):
    """A condition that is not valid; `details` name each error's path and what was expected."""


class AttrCondition(Node):
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
            raise invalid("path", str(exc)) from None
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
            raise invalid(
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
        return check_value(Operator(op), value, terms.attribute_path(attr).kind)

    @property
    def path(self) -> terms.AttributePath:
        return terms.attribute_path(self.attr)


class PropFilter(Node):
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
            raise invalid("path", str(exc)) from None
        return value

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op is None:
            return value
        return check_value(Operator(op), value, ValueKind.JSON)

    @property
    def path(self) -> tuple[str, ...]:
        return terms.split_path(self.prop)


CountOperator = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class EventCount(Node):
    op: CountOperator = "gte"
    value: Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)] = 1

    @property
    def ceiling(self) -> int:
        """The fewest events that compare like any more: counting can stop there."""
        return self.value if self.op in ("gte", "lt") else self.value + 1


class EventSpec(Node):
    """How many of a contact's events of one name (matching `where`, in the window) there are."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    where: Annotated[list[PropFilter], Field(max_length=MAX_CHILDREN)] = []  # noqa: RUF012 (a pydantic default: copied for each model)
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
                raise invalid("duration", str(exc)) from None
        return value


class EventCondition(Node):
    event: EventSpec


class SegmentCondition(Node):
    """The contact is a member of another segment (by key)."""

    segment: SegmentKey


class ScoreCondition(Node):
    score: ScoreSpec


class LifecycleCondition(Node):
    lifecycle: LifecycleSpec


class ConsentCondition(Node):
    consent: ConsentSpec


class AllCondition(Node):
    all: Annotated[list[Condition], Field(min_length=1, max_length=MAX_CHILDREN)]


class AnyCondition(Node):
    any: Annotated[list[Condition], Field(min_length=1, max_length=MAX_CHILDREN)]


class NotCondition(Node):
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


def error_details(exc: ValidationError, *, at: Sequence[int | str] = ()) -> list[dict[str, Any]]:
    """Pydantic's errors as error details, each `loc` after `at` (where the validated value is:
    a document's index in a file, `query` for a request's parameters)."""
    return [
        {"loc": [*at, *error_path(error["loc"])], "msg": error["msg"], "type": error["type"]}
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
