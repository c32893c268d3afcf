"""Workspace-isolation cases of the imports routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.imports.helpers import csv_bytes, run_jobs, upload
from tests.isolation import Pair, case, not_found

A_FILE = csv_bytes(
    [
        ["メールアドレス", "氏名", "年齢"],
        ["a@example.jp", "A社 山田", "30"],
        ["bad", "A社 佐藤", "x"],
    ]
)


def _a_import(pair: Pair) -> dict[str, Any]:
    """Workspace A imports a file (one good row, one bad); B imports nothing."""
    queued = upload(pair.client, pair.a_key, A_FILE, mapping="年齢=age:int")
    run_jobs(pair.runtime)
    return queued


@case("POST", "/api/v1/imports")
def _submit_import(pair: Pair) -> None:
    a = _a_import(pair)
    b_file = csv_bytes([["email"], ["a@example.jp"]])
    b = upload(pair.client, pair.b_key, b_file, source="B")
    run_jobs(pair.runtime)
    # B's row names the same address as A's contact: B gets its own contact, A's is untouched.
    [a_contact] = pair.get("/api/v1/contacts", pair.a_key)["items"]
    [b_contact] = pair.get("/api/v1/contacts", pair.b_key)["items"]
    assert a_contact["id"] != b_contact["id"]
    assert a_contact["sources"] == ["import"]
    assert b_contact["sources"] == ["B"]
    assert pair.get(f"/api/v1/imports/{b['id']}", pair.b_key)["created"] == 1
    assert pair.get(f"/api/v1/imports/{a['id']}", pair.a_key)["created"] == 1


@case("GET", "/api/v1/imports")
def _list_imports(pair: Pair) -> None:
    a = _a_import(pair)
    assert pair.get("/api/v1/imports", pair.b_key) == {"items": [], "next_cursor": None}
    assert [i["id"] for i in pair.get("/api/v1/imports", pair.a_key)["items"]] == [a["id"]]


@case("GET", "/api/v1/imports/{import_id}")
def _get_import(pair: Pair) -> None:
    a = _a_import(pair)
    not_found(pair.client.get(f"/api/v1/imports/{a['id']}", headers=pair.b_key))
    assert pair.get(f"/api/v1/imports/{a['id']}", pair.a_key)["status"] == "done"


@case("GET", "/api/v1/imports/{import_id}/errors")
def _import_errors(pair: Pair) -> None:
    a = _a_import(pair)
    not_found(pair.client.get(f"/api/v1/imports/{a['id']}/errors", headers=pair.b_key))
    errors = pair.get(f"/api/v1/imports/{a['id']}/errors", pair.a_key)["items"]
    assert [(e["line"], e["column"]) for e in errors] == [(3, "メールアドレス"), (3, "年齢")]


@case("GET", "/api/v1/exports/contacts")
def _export_contacts(pair: Pair) -> None:
    _a_import(pair)
    for fmt in ("csv", "jsonl"):
        response = pair.client.get(f"/api/v1/exports/contacts?format={fmt}", headers=pair.b_key)
        assert response.status_code == 200, response.text
        assert "a@example.jp" not in response.text
        assert "A社" not in response.text
        seen_by_a = pair.client.get(f"/api/v1/exports/contacts?format={fmt}", headers=pair.a_key)
        assert "A社 山田" in seen_by_a.text
