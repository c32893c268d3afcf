"""Importing a file on this machine, chunk by chunk: what `sodate import` runs.

API uploads go through the job queue instead (`jobs.py`, `service.run_chunk`, a chunk per
job); here a second process parses the file while this one writes (`reading.py`). Both write
with `service.write_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from sodate.imports import service
from sodate.imports.models import ImportStatus
from sodate.imports.reading import ParserStopped, parsed_chunks
from sodate.imports.schemas import ImportOptions, ImportOut
from sodate.runtime import Runtime


def import_file(
    runtime: Runtime,
    workspace_id: str,
    path: Path,
    options: ImportOptions,
    *,
    chunk: int = service.CHUNK_ROWS,
    on_chunk: Callable[[ImportOut], None] | None = None,
) -> ImportOut:
    """Import the file, one transaction per chunk; `on_chunk` sees the import after each.

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
            for parsed in chunks:
                with runtime.db.transaction() as session:
                    result = service.import_out(
                        service.write_chunk(
                            session,
                            workspace_id,
                            import_id,
                            parsed,
                            now=runtime.clock.now(),
                            limit=chunk,
                        )
                    )
                if on_chunk is not None:
                    on_chunk(result)
                if result.status is ImportStatus.DONE:
                    return result
        raise ParserStopped("the file ended before its last chunk")
    except BaseException as exc:
        # Best effort: if the database itself failed, the original error matters more.
        with suppress(Exception), runtime.db.transaction() as session:
            reason = f"stopped: {type(exc).__name__}: {exc}".removesuffix(": ")
            service.mark_failed(session, workspace_id, import_id, reason, now=runtime.clock.now())
        raise
    finally:
        chunks.close()
