"""Importing a file on this machine, chunk by chunk: what `sodate import` runs.

API uploads go through the job queue instead (`jobs.py`, `service.run_chunk`, a chunk per
job); here a second process parses the file while this one writes (`reading.py`). Both write
with `service.write_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

from sodate.imports import service
from sodate.imports.models import ImportStatus
from sodate.imports.reading import ParsedChunk, ParserStopped, parsed_chunks
from sodate.imports.schemas import ImportOptions, ImportOut
from sodate.runtime import Runtime, collection_deferred

PARSED_CHUNK_ROWS = 5_000
"""Records the parsing process hands over at a time. The writer holds a parsed chunk and what
it makes of it while writing it, so this, not the transaction, sets the writer's memory."""
CHUNKS_PER_TRANSACTION = 6
"""Parsed chunks a transaction of a local import writes: 30,000 rows. Index pages that rows
reach at random (identities, a company's contacts) are written once a transaction, so larger
ones write fewer of them a row. At 1,000,000 rows in random order a transaction holds
SQLite's writer for about a second and a half (BENCHMARKS.md, "CSV contact import")."""


def import_file(
    runtime: Runtime,
    workspace_id: str,
    path: Path,
    options: ImportOptions,
    *,
    chunk: int = PARSED_CHUNK_ROWS,
    transaction_chunks: int = CHUNKS_PER_TRANSACTION,
    on_commit: Callable[[ImportOut], None] | None = None,
) -> ImportOut:
    """Import the file, `transaction_chunks` chunks of `chunk` records a transaction;
    `on_commit` sees the import after each transaction.

    If the import stops on an error, it is marked failed with the reason before the error
    goes on.
    """
    with path.open("rb") as stream:
        layout, fields = service.prepare(stream, options)
    with runtime.db.transaction() as session:
        record = service.create_import(
            session,
            workspace_id,
            options,
            layout,
            fields,
            file_name=path.name,
            size=path.stat().st_size,
            now=runtime.clock.now(),
            status=ImportStatus.RUNNING,
        )
        import_id, make_parser = record.id, service.row_parser(session, record)
    chunks = parsed_chunks(path, layout, make_parser, limit=chunk)
    interval = runtime.settings.sqlite_checkpoint_interval_seconds
    try:
        with runtime.db.checkpointing(interval):
            while True:
                with collection_deferred():
                    result = _write_next(
                        runtime, workspace_id, import_id, chunks, chunk, transaction_chunks
                    )
                if on_commit is not None:
                    on_commit(result)
                if result.status is ImportStatus.DONE:
                    return result
    except BaseException as exc:
        # Best effort: if the database itself failed, the original error matters more.
        with suppress(Exception), runtime.db.transaction() as session:
            reason = f"stopped: {type(exc).__name__}: {exc}".removesuffix(": ")
            service.mark_failed(session, workspace_id, import_id, reason, now=runtime.clock.now())
        raise
    finally:
        chunks.close()


def _write_next(
    runtime: Runtime,
    workspace_id: str,
    import_id: int,
    chunks: Iterator[ParsedChunk],
    limit: int,
    count: int,
) -> ImportOut:
    """Write the next `count` parsed chunks (fewer at the end of the file; at least one) in
    one transaction."""
    written = 0
    with runtime.db.transaction() as session:
        while True:
            parsed = next(chunks, None)
            if parsed is None:
                raise ParserStopped("the file ended before its last chunk")
            record = service.write_chunk(
                session, workspace_id, import_id, parsed, now=runtime.clock.now(), limit=limit
            )
            written += 1
            if record.status == ImportStatus.DONE or written >= count:
                return service.import_out(record)
