"""Tables of import jobs, the files uploaded for them and their per-row reports."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class ImportKind(StrEnum):
    CONTACTS = "contacts"
    EVENTS = "events"


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Import(Base):
    """One CSV file imported into a workspace, its settings, progress and counts.

    `position` and `line` say how far the file has been read: they commit with the rows of
    the chunks read, so an interrupted import resumes after the last committed chunk. Counts:
    `total` = `imported` + `rejected`; contacts: `imported` = `created` + `updated`; events:
    `imported` = `created` + `skipped` (rows imported before, recognized by their message id).
    """

    __tablename__ = "imports"
    __table_args__ = (sa.Index("ix_imports_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    file_name: Mapped[str] = mapped_column(sa.String(300))
    source: Mapped[str] = mapped_column(sa.String(100))
    encoding: Mapped[str] = mapped_column(sa.String(16))
    delimiter: Mapped[str] = mapped_column(sa.String(1))
    header: Mapped[list[str]] = mapped_column(JSONDocument)
    mapping: Mapped[list[str]] = mapped_column(JSONDocument)
    """The field of each column, in header order, as given or chosen by the default mapping."""
    options: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    position: Mapped[int] = mapped_column(sa.BigInteger)
    line: Mapped[int]
    total: Mapped[int]
    imported: Mapped[int]
    created: Mapped[int]
    updated: Mapped[int]
    skipped: Mapped[int]
    rejected: Mapped[int]
    error_count: Mapped[int]
    """Row errors found; only the first MAX_STORED_ERRORS are kept in `import_errors`."""
    failure: Mapped[str | None] = mapped_column(sa.Text)
    """Why the whole import failed (unreadable file), as opposed to errors in rows."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportRowError(Base):
    """Why a row of an import was rejected: its line in the file, the column and the value."""

    __tablename__ = "import_errors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("imports.id", ondelete="CASCADE"), index=True
    )
    line: Mapped[int]
    column: Mapped[str | None] = mapped_column(sa.String(200))
    value: Mapped[str | None] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.String(300))


class ImportBlock(Base):
    """A block of an uploaded file, kept in the database until the import finishes.

    In the database rather than on a disk, so that any worker, on any machine, can run an
    import the API accepted.
    """

    __tablename__ = "import_blocks"

    import_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
