"""Segments as the admin API takes and shows them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sodate.conditions.schemas import Condition, check_depth
from sodate.contacts.schemas import ContactOut

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
            check_depth(data.get("condition"))
        return data


class PreviewOut(BaseModel):
    count: int
    sample: list[ContactOut]
    """The first contacts by id."""
