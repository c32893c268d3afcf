"""Imports as the admin API shows them, and the options an import takes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sodate.errors import InvalidInput
from sodate.imports.csvfile import Encoding
from sodate.imports.models import ImportKind, ImportStatus

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
SourceTag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=PRINTABLE),
]
DEFAULT_SOURCE = "import"


class ImportOptions(BaseModel):
    """How to read a file: what it holds, its source tag, encoding and column mapping."""

    model_config = ConfigDict(extra="forbid")

    kind: ImportKind = ImportKind.CONTACTS
    source: SourceTag = Field(
        default=DEFAULT_SOURCE,
        description='Tag recorded on every contact of the file, e.g. "展示会2026"',
    )
    encoding: Encoding = Encoding.AUTO
    mapping: dict[str, str] = Field(
        default_factory=dict, description="Header → field, e.g. {'来場日': 'visited:date'}"
    )
    event: (
        Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE)] | None
    ) = Field(default=None, description="Events imports: the event name of rows without one")


class ColumnOut(BaseModel):
    column: str
    field: str


class ImportOut(BaseModel):
    id: int
    kind: ImportKind
    status: ImportStatus
    file_name: str
    source: str
    encoding: str
    mapping: list[ColumnOut]
    event: str | None
    size_bytes: int
    bytes_read: int
    total: int
    imported: int
    created: int
    updated: int
    skipped: int
    rejected: int
    error_count: int
    errors_not_stored: int
    failure: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportPage(BaseModel):
    items: list[ImportOut]
    next_cursor: str | None


class RowErrorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    line: int
    column: str | None
    value: str | None
    reason: str


class RowErrorPage(BaseModel):
    items: list[RowErrorOut]
    next_cursor: str | None
    errors_not_stored: int = Field(description="Errors found beyond those kept for the report")


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`header=field` pairs (CLI `--map`, API `mapping=`) as a mapping; the last `=` splits."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        header, equals, field = pair.rpartition("=")
        if not equals or not header.strip():
            message = f"a mapping is `header=field`, not {pair!r}"
            raise InvalidInput(
                message,
                details=[{"loc": ["query", "mapping"], "msg": message, "type": "mapping"}],
            )
        mapping[header.strip()] = field.strip()
    return mapping
