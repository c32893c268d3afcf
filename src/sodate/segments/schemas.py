"""Segments as the admin API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from sodate.conditions.schemas import Condition, check_depth
from sodate.contacts.schemas import ContactOut
from sodate.segments.models import SegmentKind

MAX_SAMPLE = 100


class PreviewIn(BaseModel):
    """An unsaved condition: how many contacts satisfy it now, and a few of them."""

    model_config = ConfigDict(extra="forbid")

    condition: Condition
    sample: Annotated[int, Field(ge=0, le=MAX_SAMPLE)] = 10

    @model_validator(mode="before")
    @classmethod
    def _bounded_nesting(cls, data: Any) -> Any:
        if isinstance(data, dict):
            check_depth(data.get("condition"), at=["condition"])
        return data


class PreviewOut(BaseModel):
    count: int
    sample: list[ContactOut]
    """The first contacts by id."""


class SegmentIn(BaseModel):
    """`PUT /api/v1/segments/{key}`: a dynamic segment has a condition, a static list none."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    kind: SegmentKind = SegmentKind.DYNAMIC
    condition: Condition | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounded_nesting(cls, data: Any) -> Any:
        if isinstance(data, dict):
            check_depth(data.get("condition"), at=["condition"])
        return data

    @model_validator(mode="after")
    def _condition_fits_kind(self) -> SegmentIn:
        if self.kind is SegmentKind.DYNAMIC and self.condition is None:
            raise ValueError("a dynamic segment needs a condition")
        if self.kind is SegmentKind.STATIC and self.condition is not None:
            raise ValueError("a static list has no condition: its members are added by hand")
        return self


KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class SegmentDocument(SegmentIn):
    """One segment of a file for `sodate segments apply`: the PUT body and its key."""

    key: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=KEY_PATTERN)]


class SegmentApplied(BaseModel):
    key: str
    created: bool
    entered: int
    exited: int
    member_count: int


class SegmentOut(BaseModel):
    key: str
    name: str
    description: str | None
    kind: SegmentKind
    condition: dict[str, Any] | None
    member_count: int
    created_at: datetime
    updated_at: datetime
    computed_at: datetime | None


class SegmentSaved(BaseModel):
    segment: SegmentOut
    entered: int
    """Contacts that entered when its members were recomputed."""
    exited: int


class MemberOut(BaseModel):
    contact_id: int
    since: datetime


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class MembersIn(BaseModel):
    """Contacts to add to or remove from a static list."""

    model_config = ConfigDict(extra="forbid")

    contact_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=10_000)]


class MembersChanged(BaseModel):
    changed: int


class FileRowError(BaseModel):
    """A rejected row of a CSV file, in the one error format."""

    loc: list[str | int]
    """`["line", 14, "メールアドレス"]`: the line the record starts on, as an editor numbers
    it, and the header of the column at fault; `["line", 14]` when the row as a whole is
    (broken quoting, not the header's number of values, every identifying cell empty)."""
    msg: str
    type: str
    """`contact` (names nobody), `value` (not an id, email, phone or user id), `empty` (no
    identifier), `columns` (not the header's number of values), `csv` (broken quoting)."""


class MembersFromFile(BaseModel):
    """A static list changed by a CSV file: every good row applied, every bad row reported."""

    rows: int
    """Records read (blank lines are not counted): `matched` plus `error_count`."""
    matched: int
    """Rows that named a contact (two rows may name the same one)."""
    changed: int
    """Contacts that entered the list (or left it)."""
    errors: list[FileRowError]
    """The first rejected rows, in file order."""
    error_count: int
    """All rejected rows, shown or not."""


class ChangeOut(BaseModel):
    id: int
    segment: str
    contact_id: int
    entered: bool
    cause: str
    at: datetime


class ChangePage(BaseModel):
    items: list[ChangeOut]
    next_cursor: str | None
