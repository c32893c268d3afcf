"""Contacts and companies as the admin API shows and takes them."""

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
    model_validator,
)

# Text and documents must be storable on both databases: PostgreSQL's text and JSONB hold no
# NUL character, JSON has no NaN or infinity, and deep nesting cannot be serialized back.
NO_NUL = r"^[^\x00]*$"
MAX_TRAIT_DEPTH = 32

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL)
]
TraitKey = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^.$\x00]+$")]


def _storable_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("text may not contain NUL characters")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (an unpaired surrogate)") from None


def _storable(traits: dict[str, Any]) -> dict[str, Any]:
    stack: list[tuple[Any, int]] = [(traits, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _storable_text(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError("numbers must be finite: JSON has no NaN or infinity")
        elif isinstance(value, dict | list):
            if depth >= MAX_TRAIT_DEPTH:
                raise ValueError(f"documents may nest at most {MAX_TRAIT_DEPTH} levels deep")
            if isinstance(value, dict):
                for key in value:
                    _storable_text(key)
                stack.extend((child, depth + 1) for child in value.values())
            else:
                stack.extend((child, depth + 1) for child in value)
    return traits


Traits = Annotated[dict[TraitKey, Any], AfterValidator(_storable)]
ShortText = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]


class IdentityOut(BaseModel):
    kind: str
    value: str


class CompanyRef(BaseModel):
    id: int
    group_key: str
    name: str | None
    traits: dict[str, Any]


class ContactOut(BaseModel):
    """A profile. `stage`, `scores`, `segments` and `consents` are filled by their capabilities."""

    id: int
    email: str | None
    phone: str | None
    user_id: str | None
    name: str | None
    traits: dict[str, Any]
    identities: list[IdentityOut]
    company: CompanyRef | None
    stage: str | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    segments: list[str] = Field(default_factory=list)
    consents: dict[str, Any] = Field(default_factory=dict)
    sources: list[str]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class ContactUpsert(BaseModel):
    """Create a contact, or update the one these identifiers lead to."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=320, pattern=NO_NUL)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)] | None = None
    user_id: Identifier | None = None
    external_ids: dict[TraitKey, Identifier] = Field(
        default_factory=dict, description='Ids in other systems by type, e.g. {"line": "U4af…"}'
    )
    traits: Traits = Field(default_factory=dict)
    company_key: Identifier | None = Field(
        default=None, description="The group key of the company the contact works for"
    )

    @model_validator(mode="after")
    def _has_identifier(self) -> ContactUpsert:
        if not (self.email or self.phone or self.user_id or self.external_ids):
            raise ValueError("give at least one of email, phone, user_id or external_ids")
        return self


class ContactPatch(BaseModel):
    """Traits to set; a null value removes the trait."""

    model_config = ConfigDict(extra="forbid")

    traits: Traits = Field(default_factory=dict)
    company_key: Identifier | None = None


class ContactUpserted(BaseModel):
    created: bool
    contact: ContactOut


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int = Field(ge=1, le=2**62, description="The contact merged into this one")
    reason: ShortText = "merged by API"


class MergeOut(BaseModel):
    id: int
    survivor_id: int
    merged_id: int
    reason: str
    details: dict[str, Any]
    created_at: datetime


class CompanyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_key: str
    name: str | None
    traits: dict[str, Any]
    contact_count: int = 0
    created_at: datetime
    updated_at: datetime


class CompanyPage(BaseModel):
    items: list[CompanyOut]
    next_cursor: str | None


class CompanyUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traits: Traits = Field(default_factory=dict)
