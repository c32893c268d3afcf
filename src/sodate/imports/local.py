"""Importing a file on this machine, chunk by chunk: what `sodate import` runs.

API uploads go through the job queue instead (`jobs.py`); both run `service.run_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from sodate.imports import service
from sodate.imports.csvfile import iter_records
from sodate.imports.models import ImportStatus
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
            import_id = service.create_import(
                session,
                workspace_id,
                options,
                layout,
                fields,
                file_name=path.name,
                size=path.stat().st_size,
                now=runtime.clock.now(),
                status=ImportStatus.RUNNING,
            ).id
        records = iter_records(
            stream,
            layout.encoding,
            layout.delimiter,
            start=layout.data_start,
            line=layout.data_line,
        )
        try:
            while True:
                with runtime.db.transaction() as session:
                    result = service.import_out(
                        service.run_chunk(
                            session,
                            workspace_id,
                            import_id,
                            records,
                            now=runtime.clock.now(),
                            limit=chunk,
                        )
                    )
                if on_chunk is not None:
                    on_chunk(result)
                if result.status is ImportStatus.DONE:
                    return result
        except BaseException as exc:
            # Best effort: if the database itself failed, the original error matters more.
            with suppress(Exception), runtime.db.transaction() as session:
                reason = f"stopped: {type(exc).__name__}: {exc}".removesuffix(": ")
                service.mark_failed(
                    session, workspace_id, import_id, reason, now=runtime.clock.now()
                )
            raise
