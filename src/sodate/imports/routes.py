"""HTTP routes of imports and exports. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from sodate.conditions.schemas import error_details
from sodate.deps import Caller, allowed
from sodate.errors import InvalidInput
from sodate.imports import jobs as _jobs  # noqa: F401 - registers the job that runs uploads
from sodate.imports import service
from sodate.imports.csvfile import Encoding, uploaded_csv
from sodate.imports.export import MEDIA_TYPES, ExportFormat, open_export
from sodate.imports.models import ImportKind
from sodate.imports.schemas import (
    DEFAULT_SOURCE,
    PRINTABLE,
    ImportOptions,
    ImportOut,
    ImportPage,
    RowErrorPage,
    parse_mapping,
)
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1")

ImportId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


@router.post(
    "/imports",
    response_model=ImportOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["imports"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def submit_import(
    request: Request,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
    kind: ImportKind = ImportKind.CONTACTS,
    source: Annotated[str, Query(description='Tag for the rows, e.g. "展示会2026"')] = (
        DEFAULT_SOURCE
    ),
    encoding: Encoding = Encoding.AUTO,
    mapping: Annotated[
        list[str] | None,
        Query(description="`header=field`, repeated, e.g. `来場日=visited:date`"),
    ] = None,
    event: Annotated[
        str | None, Query(description="Events imports: the event name of rows without one")
    ] = None,
    file_name: Annotated[str, Query(min_length=1, max_length=300, pattern=PRINTABLE)] = (
        "upload.csv"
    ),
) -> ImportOut:
    """Upload a CSV file as the request body (UTF-8 or Shift_JIS/CP932) and queue its import.

    The header and mapping are checked at once (422 if the file cannot be imported); rows
    are imported by the job queue: follow `GET /api/v1/imports/{id}`.
    """
    options = _options(
        {
            "kind": kind,
            "source": source,
            "encoding": encoding,
            "mapping": parse_mapping(mapping or ()),
            "event": event,
        }
    )
    data = uploaded_csv(
        await request.body(),
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        limit=caller.runtime.settings.max_request_bytes,
    )
    return await run_in_threadpool(_submit, caller, data, options, file_name)


def _submit(caller: Caller, data: bytes, options: ImportOptions, file_name: str) -> ImportOut:
    runtime = caller.runtime
    with runtime.db.transaction() as session:
        return service.submit_upload(
            session,
            caller.workspace_id,
            data,
            options,
            file_name=file_name,
            now=caller.now(),
            max_attempts=runtime.settings.job_max_attempts,
        )


def _options(values: dict[str, object]) -> ImportOptions:
    try:
        return ImportOptions.model_validate(values)
    except ValidationError as exc:
        # The options are the request's query parameters: located as FastAPI locates them.
        details = error_details(exc, at=["query"])
        raise InvalidInput("the import options are not valid", details=details) from None


@router.get("/imports", response_model=ImportPage, tags=["imports"])
def list_imports(
    caller: Caller = Depends(allowed(Permission.READ)), limit: Limit = 50, cursor: Cursor = None
) -> ImportPage:
    """Imports, newest first."""
    with caller.runtime.db.read() as session:
        return service.list_imports(session, caller.workspace_id, limit=limit, before=cursor)


@router.get("/imports/{import_id}", response_model=ImportOut, tags=["imports"])
def get_import(
    import_id: ImportId, caller: Caller = Depends(allowed(Permission.READ))
) -> ImportOut:
    """An import's status and counts."""
    with caller.runtime.db.read() as session:
        return service.get_import(session, caller.workspace_id, import_id)


@router.get("/imports/{import_id}/errors", response_model=RowErrorPage, tags=["imports"])
def import_errors(
    import_id: ImportId,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> RowErrorPage:
    """The rejected rows of an import: line, column, value and reason, in file order."""
    with caller.runtime.db.read() as session:
        return service.list_errors(
            session, caller.workspace_id, import_id, limit=limit, after=cursor
        )


@router.get(
    "/exports/contacts",
    tags=["imports"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def export_contacts_route(
    caller: Caller = Depends(allowed(Permission.READ)),
    format: ExportFormat = ExportFormat.CSV,
    bom: Annotated[
        bool | None, Query(description="Start with a UTF-8 byte order mark (default: CSV only)")
    ] = None,
) -> StreamingResponse:
    """Every contact of the workspace as CSV (one column per trait) or JSON Lines."""
    with_bom = format is ExportFormat.CSV if bom is None else bom
    extension = "csv" if format is ExportFormat.CSV else "jsonl"
    return StreamingResponse(
        open_export(caller.runtime.db, caller.workspace_id, fmt=format, bom=with_bom),
        media_type=f"{MEDIA_TYPES[format]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="contacts.{extension}"'},
    )
