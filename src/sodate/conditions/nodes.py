"""What every node of a condition is built on.

The base model (frozen, unknown keys refused), the error its validators raise (a type and a
message that error details carry), and the shapes of the names a node holds: a path into a
contact or an event, a key of a segment or a scoring model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError


def invalid(error_type: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(error_type, message, context or None)


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PathText = Annotated[str, StringConstraints(min_length=1, max_length=300)]

SegmentKey = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
