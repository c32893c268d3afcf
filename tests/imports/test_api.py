"""Imports through the API: the upload is queued, run by the job queue, and reported on."""

from __future__ import annotations

import gzip

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.imports import service
from sodate.imports.csvfile import uploaded_csv
from sodate.imports.models import ImportBlock
from sodate.runtime import Runtime
from tests.imports.helpers import contacts, csv_bytes, run_jobs, upload
from tests.workspaces.helpers import error_of

FILE = csv_bytes(
    [
        ["メールアドレス", "氏名", "会社名", "来場日"],
        ["taro@example.jp", "山田 太郎", "株式会社サンプル", "2026/3/1"],
        ["not-an-email", "佐藤 花子", "", "2026/3/2"],
        ["jiro@example.jp", "山田 次郎", "株式会社サンプル", "2026/3/3"],
    ],
    "cp932",
)


def test_an_upload_is_queued_then_run_by_the_job_queue(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    queued = upload(
        client,
        admin_headers,
        FILE,
        source="展示会2026",
        mapping="来場日=visited:date",
        file_name="名刺.csv",
    )
    assert queued["status"] == "queued"
    assert (queued["file_name"], queued["encoding"], queued["total"]) == ("名刺.csv", "cp932", 0)
    assert {"column": "来場日", "field": "trait:visited:date"} in queued["mapping"]
    assert contacts(client, admin_headers) == []

    assert run_jobs(runtime) == 1
    done = client.get(f"/api/v1/imports/{queued['id']}", headers=admin_headers).json()
    assert done["status"] == "done"
    assert (done["total"], done["created"], done["rejected"]) == (3, 2, 1)
    assert done["bytes_read"] == done["size_bytes"] == len(FILE)
    errors = client.get(f"/api/v1/imports/{queued['id']}/errors", headers=admin_headers).json()
    assert errors["next_cursor"] is None
    assert [(e["line"], e["column"], e["value"], e["reason"]) for e in errors["items"]] == [
        (3, "メールアドレス", "not-an-email", "not an email address")
    ]
    assert sorted(c["name"] for c in contacts(client, admin_headers)) == ["山田 太郎", "山田 次郎"]
    listed = client.get("/api/v1/imports", headers=admin_headers).json()
    assert [item["id"] for item in listed["items"]] == [queued["id"]]


def test_a_large_upload_runs_one_chunk_per_job_and_resumes_where_it_stopped(
    client: TestClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK_ROWS", 4)
    monkeypatch.setattr(service, "BLOCK_SIZE", 50)  # rows straddle the stored blocks
    rows = [["email", "氏名"]] + [[f"p{i}@example.jp", f"名前{i}"] for i in range(10)]
    queued = upload(client, admin_headers, csv_bytes(rows))
    assert run_jobs(runtime) == 3
    done = client.get(f"/api/v1/imports/{queued['id']}", headers=admin_headers).json()
    assert (done["status"], done["total"], done["created"]) == ("done", 10, 10)
    names = {c["name"] for c in contacts(client, admin_headers)}
    assert names == {f"名前{i}" for i in range(10)}
    with runtime.db.read() as session:
        # The upload is dropped once imported.
        assert session.scalar(sa.select(sa.func.count()).select_from(ImportBlock)) == 0


def test_events_upload(client: TestClient, runtime: Runtime, admin_headers: dict[str, str]) -> None:
    data = csv_bytes([["email", "日付", "商品"], ["a@example.jp", "2026/3/1", "お茶"]])
    queued = upload(client, admin_headers, data, kind="events", event="Store Purchase")
    assert queued["event"] == "Store Purchase"
    run_jobs(runtime)
    done = client.get(f"/api/v1/imports/{queued['id']}", headers=admin_headers).json()
    assert (done["kind"], done["created"]) == ("events", 1)


EMAIL_ONLY = csv_bytes([["email"], ["a@example.jp"]])
MAPPING = ["query", "mapping"]
SOURCE = ["query", "source"]


@pytest.mark.parametrize(
    ("data", "params", "message", "loc", "error_type"),
    [
        (b"", {}, "empty", ["file"], "file"),
        (
            csv_bytes([["氏名"], ["山田"]]),
            {},
            "no column identifies the contact",
            MAPPING,
            "mapping",
        ),
        (EMAIL_ONLY, {"mapping": "x"}, "header=field", MAPPING, "mapping"),
        (EMAIL_ONLY, {"mapping": "会社=company"}, "no column", MAPPING, "mapping"),
        (EMAIL_ONLY, {"kind": "events"}, "no event column", MAPPING, "mapping"),
        (EMAIL_ONLY, {"source": " "}, "not valid", SOURCE, "string_too_short"),
        (EMAIL_ONLY, {"source": "a\x00b"}, "not valid", SOURCE, "string_pattern_mismatch"),
        (EMAIL_ONLY, {"event": ""}, "not valid", ["query", "event"], "string_too_short"),
        (csv_bytes([["email", "a\x00b"], ["a@example.jp", "x"]]), {}, "header", ["file"], "file"),
        (EMAIL_ONLY, {"mapping": "email=x\x01y"}, "control", MAPPING, "mapping"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_at_once(
    client: TestClient,
    admin_headers: dict[str, str],
    data: bytes,
    params: dict[str, str],
    message: str,
    loc: list[str],
    error_type: str,
) -> None:
    response = client.post("/api/v1/imports", content=data, params=params, headers=admin_headers)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert message in error["message"]
    # One detail, in the shape request validation gives: the file, or the query parameter.
    (detail,) = error["details"]
    assert set(detail) == {"loc", "msg", "type"}, detail
    assert (detail["loc"], detail["type"]) == (loc, error_type)
    if error_type in ("file", "mapping"):
        assert detail["msg"] == error["message"]
    else:
        assert detail["msg"].startswith("String should"), detail
    assert client.get("/api/v1/imports", headers=admin_headers).json()["items"] == []


def test_unknown_import(client: TestClient, admin_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/imports/999", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/imports/999/errors", headers=admin_headers).status_code == 404


def test_a_gzip_upload_is_read_and_a_form_upload_is_told_what_to_send(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    compressed = gzip.compress(FILE)
    headers = {**admin_headers, "Content-Type": "text/csv", "Content-Encoding": "gzip"}
    response = client.post("/api/v1/imports", content=compressed, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["encoding"] == "cp932"
    assert run_jobs(runtime) == 1
    assert sorted(c["name"] for c in contacts(client, admin_headers)) == ["山田 太郎", "山田 次郎"]

    form = client.post("/api/v1/imports", files={"file": ("名刺.csv", FILE)}, headers=admin_headers)
    assert form.status_code == 415, form.text
    assert "not as a form upload" in error_of(form)["message"]
    # A file of two gzip members is read whole; one cut short is refused, not read shorter.
    half = FILE.index(b"\r\n", len(FILE) // 2) + 2
    two_members = gzip.compress(FILE[:half]) + gzip.compress(FILE[half:])
    assert (
        uploaded_csv(two_members, content_type="text/csv", content_encoding="gzip", limit=10_000)
        == FILE
    )
    cut = compressed[:-10]
    for encoding, data, status in (("br", FILE, 415), ("gzip", FILE, 422), ("gzip", cut, 422)):
        headers = {**admin_headers, "Content-Type": "text/csv", "Content-Encoding": encoding}
        response = client.post("/api/v1/imports", content=data, headers=headers)
        assert response.status_code == status, response.text
    assert len(client.get("/api/v1/imports", headers=admin_headers).json()["items"]) == 1
