"""Documents of the system endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ClockOut(BaseModel):
    mode: str
    now: datetime


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, description="A duration such as 3d, 2h30m, 1w or 90s.")
    to: datetime | None = Field(default=None, description="An instant with a UTC offset.")

    @model_validator(mode="after")
    def _one_of(self) -> ClockAdvance:
        if (self.by is None) == (self.to is None):
            raise ValueError("give exactly one of `by` or `to`")
        if self.to is not None and self.to.tzinfo is None:
            raise ValueError("`to` needs a UTC offset")
        return self


class ClockAdvanced(ClockOut):
    jobs_run: int = Field(description="Jobs and timers that fell due and ran after the advance.")


class Health(BaseModel):
    status: str
    database: str
    version: str
