"""Imports: accepting a file, running it chunk by chunk, and reporting on it.

An import reads its file in chunks of CHUNK_ROWS records (a local import, of
`local.PARSED_CHUNK_ROWS`, several a transaction). With each chunk its valid rows are written,
its invalid rows reported, and the import's position in the file and its counts move on, in
the chunk's transaction; so a crash loses at most the transaction in progress, which runs
again from the same position. The functions here flush and never commit.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.db.paging import fetch_page
from sodate.errors import InvalidInput, NotFound
from sodate.imports import apply
from sodate.imports.csvfile import (
    BlockStream,
    FileFormatError,
    Layout,
    Record,
    iter_records,
    read_layout,
)
from sodate.imports.mapping import (
    Field,
    MappingError,
    fields_from_specs,
    mapping_specs,
    resolve_mapping,
)
from sodate.imports.models import Import, ImportBlock, ImportKind, ImportRowError, ImportStatus
from sodate.imports.reading import ParsedChunk, parse_chunk
from sodate.imports.rows import RowError, RowParser
from sodate.imports.schemas import (
    ColumnOut,
    ImportOptions,
    ImportOut,
    ImportPage,
    RowErrorOut,
    RowErrorPage,
)
from sodate.queue import service as queue
from sodate.workspaces import service as workspaces

CHUNK_ROWS = 2000
BLOCK_SIZE = 1 << 20
MAX_STORED_ERRORS = 5000
RUN_JOB = "imports.run"
FINISHED = (ImportStatus.DONE.value, ImportStatus.FAILED.value)


def prepare(stream: BinaryIO, options: ImportOptions) -> tuple[Layout, list[Field]]:
    """Read the file's layout and resolve its mapping; InvalidInput if it cannot be imported."""
    try:
        layout = read_layout(stream, options.encoding)
    except FileFormatError as exc:
        raise InvalidInput(
            str(exc), details=[{"loc": ["file"], "msg": str(exc), "type": "file"}]
        ) from None
    try:
        fields = resolve_mapping(
            options.kind, layout.header, options.mapping, fixed_event=options.event
        )
    except MappingError as exc:
        raise InvalidInput(
            str(exc), details=[{"loc": ["query", "mapping"], "msg": str(exc), "type": "mapping"}]
        ) from None
    return layout, fields


def create_import(
    session: Session,
    workspace_id: str,
    options: ImportOptions,
    layout: Layout,
    fields: Sequence[Field],
    *,
    file_name: str,
    size: int,
    now: datetime,
    status: ImportStatus,
) -> Import:
    record = Import(
        workspace_id=workspace_id,
        kind=options.kind.value,
        status=status.value,
        file_name=file_name[:300],
        source=options.source,
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        header=layout.header,
        mapping=mapping_specs(fields),
        options={"event": options.event} if options.event else {},
        size_bytes=size,
        position=layout.data_start,
        line=layout.data_line,
        total=0,
        imported=0,
        created=0,
        updated=0,
        skipped=0,
        rejected=0,
        error_count=0,
        created_at=now,
        updated_at=now,
        started_at=now if status is ImportStatus.RUNNING else None,
    )
    session.add(record)
    session.flush()
    return record


def submit_upload(
    session: Session,
    workspace_id: str,
    data: bytes,
    options: ImportOptions,
    *,
    file_name: str,
    now: datetime,
    max_attempts: int,
) -> ImportOut:
    """Keep an uploaded file and queue its import; the file's layout is checked at once."""
    layout, fields = prepare(io.BytesIO(data), options)
    record = create_import(
        session,
        workspace_id,
        options,
        layout,
        fields,
        file_name=file_name,
        size=len(data),
        now=now,
        status=ImportStatus.QUEUED,
    )
    # The block size is kept with the upload, so that a change of BLOCK_SIZE never misreads it.
    record.options = {**record.options, "block_size": BLOCK_SIZE}
    blocks = [
        {"import_id": record.id, "seq": seq, "data": data[start : start + BLOCK_SIZE]}
        for seq, start in enumerate(range(0, len(data), BLOCK_SIZE))
    ]
    if blocks:
        session.execute(sa.insert(ImportBlock), blocks)
    enqueue_run(session, record, now=now, max_attempts=max_attempts)
    return import_out(record)


def enqueue_run(session: Session, record: Import, *, now: datetime, max_attempts: int) -> None:
    """Queue the next chunk; keyed by position, so each chunk is queued once."""
    job = queue.NewJob(
        kind=RUN_JOB,
        idempotency_key=f"import:{record.id}:{record.position}",
        due_at=now,
        payload={"import_id": record.id},
        workspace_id=record.workspace_id,
    )
    queue.enqueue(session, [job], now=now, max_attempts=max_attempts)


def stored_records(session: Session, record: Import) -> Iterator[Record]:
    """The records of an uploaded file from where the import stands."""

    def fetch(seq: int) -> bytes | None:
        return session.execute(
            sa.select(ImportBlock.data).where(
                ImportBlock.import_id == record.id, ImportBlock.seq == seq
            )
        ).scalar()

    stream = io.BufferedReader(BlockStream(fetch, record.options["block_size"]))
    return iter_records(
        stream, record.encoding, record.delimiter, start=record.position, line=record.line
    )


def run_chunk(
    session: Session,
    workspace_id: str,
    import_id: int,
    records: Iterator[Record],
    *,
    now: datetime,
    limit: int | None = None,
) -> Import:
    """Import the next `limit` records (CHUNK_ROWS by default); the import is done when they
    run out."""
    limit = limit or CHUNK_ROWS
    record = import_record(session, workspace_id, import_id)
    parsed = parse_chunk(row_parser(session, record)(), records, limit)
    return write_chunk(session, workspace_id, import_id, parsed, now=now, limit=limit)


def write_chunk(
    session: Session,
    workspace_id: str,
    import_id: int,
    chunk: ParsedChunk,
    *,
    now: datetime,
    limit: int,
) -> Import:
    """Write a parsed chunk and move the import past it; done when it read under `limit`."""
    record = import_record(session, workspace_id, import_id)
    if record.status == ImportStatus.QUEUED.value:
        record.status, record.started_at = ImportStatus.RUNNING.value, now
    if chunk.end is not None:  # set once: the import is an ORM object, its attributes are slow
        record.position, record.line = chunk.end
    rows, errors = chunk.rows, list(chunk.errors)
    applied, failed = (
        apply.apply_chunk(session, record, rows, now=now) if rows else (apply.Applied(), [])
    )
    errors.extend(failed)
    _record_errors(session, record, errors)
    record.total += chunk.total
    record.rejected += chunk.rejected + len(failed)
    record.imported += len(rows) - len(failed)
    record.created += applied.created
    record.updated += applied.updated
    record.skipped += applied.skipped
    record.updated_at = now
    if chunk.read < limit:
        _finish(session, record, ImportStatus.DONE, now=now)
    session.flush()
    return record


def row_parser(session: Session, record: Import) -> Callable[[], RowParser]:
    """What makes the import's row parser; picklable, so another process can make it too."""
    kind = ImportKind(record.kind)
    return functools.partial(
        RowParser,
        kind,
        record.header,
        fields_from_specs(record.mapping, kind),
        encoding=record.encoding,
        zone=workspaces.workspace_zone(session, record.workspace_id),
        workspace_id=record.workspace_id,
        fixed_event=record.options.get("event"),
        source=record.source,
        submitted_at=record.created_at,
    )


def _record_errors(session: Session, record: Import, errors: Sequence[RowError]) -> None:
    room = max(0, MAX_STORED_ERRORS - record.error_count)
    kept = [
        {
            "import_id": record.id,
            "line": error.line,
            "column": error.column[:200] if error.column else None,
            "value": error.value,
            "reason": error.reason[:300],
        }
        for error in errors[:room]
    ]
    if kept:
        session.execute(sa.insert(ImportRowError), kept)
    record.error_count += len(errors)


def _finish(session: Session, record: Import, status: ImportStatus, *, now: datetime) -> None:
    """Close the import and drop the uploaded file: it holds personal data no longer needed."""
    record.status, record.finished_at, record.updated_at = status.value, now, now
    session.execute(sa.delete(ImportBlock).where(ImportBlock.import_id == record.id))


def mark_failed(
    session: Session, workspace_id: str, import_id: int, reason: str, *, now: datetime
) -> None:
    record = import_record(session, workspace_id, import_id)
    if record.status not in FINISHED:
        record.failure = reason[:2000]
        _finish(session, record, ImportStatus.FAILED, now=now)
        session.flush()


def import_record(session: Session, workspace_id: str, import_id: int) -> Import:
    record = session.get(Import, import_id)
    if record is None or record.workspace_id != workspace_id:
        raise NotFound(f"no import {import_id}")
    return record


def get_import(session: Session, workspace_id: str, import_id: int) -> ImportOut:
    return import_out(import_record(session, workspace_id, import_id))


def list_imports(
    session: Session, workspace_id: str, *, limit: int, before: int | None
) -> ImportPage:
    """The workspace's imports, newest first."""
    statement = (
        sa.select(Import).where(Import.workspace_id == workspace_id).order_by(Import.id.desc())
    )
    if before is not None:
        statement = statement.where(Import.id < before)
    page, next_cursor = fetch_page(session, statement, limit=limit)
    return ImportPage(items=[import_out(record) for record in page], next_cursor=next_cursor)


def list_errors(
    session: Session, workspace_id: str, import_id: int, *, limit: int, after: int | None
) -> RowErrorPage:
    """An import's row errors in file order."""
    record = import_record(session, workspace_id, import_id)
    statement = (
        sa.select(ImportRowError)
        .where(ImportRowError.import_id == record.id)
        .order_by(ImportRowError.id)
    )
    if after is not None:
        statement = statement.where(ImportRowError.id > after)
    page, next_cursor = fetch_page(session, statement, limit=limit)
    return RowErrorPage(
        items=[RowErrorOut.model_validate(error) for error in page],
        next_cursor=next_cursor,
        errors_not_stored=max(0, record.error_count - MAX_STORED_ERRORS),
    )


def import_out(record: Import) -> ImportOut:
    return ImportOut(
        id=record.id,
        kind=ImportKind(record.kind),
        status=ImportStatus(record.status),
        file_name=record.file_name,
        source=record.source,
        encoding=record.encoding,
        mapping=[
            ColumnOut(column=column, field=spec)
            for column, spec in zip(record.header, record.mapping, strict=True)
        ],
        event=record.options.get("event"),
        size_bytes=record.size_bytes,
        bytes_read=record.position,
        total=record.total,
        imported=record.imported,
        created=record.created,
        updated=record.updated,
        skipped=record.skipped,
        rejected=record.rejected,
        error_count=record.error_count,
        errors_not_stored=max(0, record.error_count - MAX_STORED_ERRORS),
        failure=record.failure,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )
