"""Writing CSV files and importing them, for tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from sodate.imports import local, service
from sodate.imports.schemas import ImportOptions, ImportOut, RowErrorOut
from sodate.queue.runner import drain_due_jobs
from sodate.runtime import Runtime


def csv_bytes(rows: Sequence[Sequence[str]], encoding: str = "utf-8", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" if bom else "").encode(encoding) + buffer.getvalue().encode(encoding)


def write_csv(
    path: Path, rows: Sequence[Sequence[str]], encoding: str = "utf-8", bom: bool = False
) -> Path:
    path.write_bytes(csv_bytes(rows, encoding, bom))
    return path


def import_file(
    runtime: Runtime,
    workspace_id: str,
    path: Path,
    *,
    chunk: int = local.PARSED_CHUNK_ROWS,
    transaction_chunks: int = local.CHUNKS_PER_TRANSACTION,
    **options: Any,
) -> ImportOut:
    """Import a file the way `sodate import` does: chunks of `chunk` records, parsed by a
    second process, `transaction_chunks` of them a transaction."""
    return local.import_file(
        runtime,
        workspace_id,
        path,
        ImportOptions(**options),
        chunk=chunk,
        transaction_chunks=transaction_chunks,
    )


def errors_of(runtime: Runtime, workspace_id: str, import_id: int) -> list[RowErrorOut]:
    with runtime.db.read() as session:
        return service.list_errors(session, workspace_id, import_id, limit=500, after=None).items


def contacts(client: TestClient, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/contacts", params={"limit": "500", **query}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def upload(
    client: TestClient, headers: dict[str, str], data: bytes, **params: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/imports",
        content=data,
        params=params,
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def run_jobs(runtime: Runtime) -> int:
    return drain_due_jobs(runtime, worker_id="test")
