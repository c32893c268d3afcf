"""Static lists from CSV files: `POST /api/v1/segments/{key}/members/csv[?remove=true]`.

Each row names one existing contact (by id, email, phone or user_id); rows that name nobody are
reported with their line, column and reason (in the one error format: `loc` and `msg`), and
every good row is applied.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.conftest import bearer, new_workspace
from tests.events.helpers import new_contact as contact
from tests.imports.helpers import csv_bytes
from tests.segments.test_segments import assert_exact, changes, member_ids, put
from tests.workspaces.helpers import error_of

BOOTH = {"name": "展示会2026 来場者", "kind": "static"}


def post_csv(
    client: TestClient, headers: dict[str, str], key: str, data: bytes, **params: Any
) -> Any:
    return client.post(
        f"/api/v1/segments/{key}/members/csv",
        content=data,
        params=params,
        headers={**headers, "Content-Type": "text/csv"},
    )


def changed_by_csv(
    client: TestClient, headers: dict[str, str], key: str, data: bytes, **params: Any
) -> dict[str, Any]:
    response = post_csv(client, headers, key, data, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def errors(result: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    """Each rejected row's line, column (None for the row as a whole) and reason."""
    found = []
    for error in result["errors"]:
        assert set(error) == {"loc", "msg", "type"}, error
        assert error["loc"][0] == "line", error
        assert 2 <= len(error["loc"]) <= 3, error
        column = error["loc"][2] if len(error["loc"]) == 3 else None
        found.append((error["loc"][1], column, error["msg"]))
    return found


@pytest.fixture
def visitors(client: TestClient, admin_headers: dict[str, str]) -> dict[str, int]:
    """Four known people, each reachable by a different identifier, and the `booth` list."""
    people = {
        "sato": contact(
            client, admin_headers, email="sato@example.jp", traits={"name": "佐藤　太郎"}
        ),
        "suzuki": contact(
            client, admin_headers, email="suzuki@example.jp", traits={"name": "鈴木　花子"}
        ),
        "takahashi": contact(
            client, admin_headers, phone="+81 90 1234 5678", traits={"name": "高橋　一郎"}
        ),
        "tanaka": contact(client, admin_headers, user_id="u-4", traits={"name": "田中　次郎"}),
    }
    put(client, admin_headers, "booth", BOOTH)
    return people


def test_rows_name_contacts_by_id_email_phone_and_user_id(
    client: TestClient, admin_headers: dict[str, str], visitors: dict[str, int]
) -> None:
    data = csv_bytes(
        [
            ["id", "氏名", "Email", "PHONE", "user_id"],
            [str(visitors["sato"]), "佐藤　太郎", "ignored@example.jp", "", ""],
            ["", "鈴木　花子", "  Suzuki@Example.JP ", "", ""],
            ["", "高橋　一郎", "-", "090-1234-5678", ""],
            ["", "田中　次郎", "", "", "u-4"],
            ["", "", "", "", ""],  # blank: skipped, not counted
            ["", "不明", "nobody@example.jp", "", ""],
            ["", "誤記", "", "090-12", ""],
            ["", "空欄", "", "", ""],
            [str(visitors["sato"]), "佐藤 (重複)", "", "", ""],
        ],
        bom=True,
    )
    result = changed_by_csv(client, admin_headers, "booth", data)
    assert (result["rows"], result["matched"], result["changed"]) == (8, 5, 4)
    assert result["error_count"] == 3
    assert errors(result) == [
        (7, "Email", "no contact has this email address"),
        (8, "PHONE", "not a valid phone number"),
        (
            9,
            None,
            "no identifier: every identifying column is empty (id, Email, PHONE, user_id)",
        ),
    ]
    assert result["errors"][0] == {
        "loc": ["line", 7, "Email"],
        "msg": "no contact has this email address",
        "type": "contact",
    }
    assert [error["type"] for error in result["errors"][1:]] == ["value", "empty"]
    expected = sorted(visitors.values())
    assert member_ids(client, admin_headers, "booth") == expected
    assert changes(client, admin_headers, "booth") == [(c, True, "api") for c in expected]

    # The same file again changes nothing and reports the same rows.
    again = changed_by_csv(client, admin_headers, "booth", data)
    assert (again["matched"], again["changed"], again["errors"]) == (5, 0, result["errors"])


@pytest.mark.parametrize("encoding", ["cp932", "utf-8"])
def test_japanese_excel_files_with_japanese_headers_and_full_width_values(
    client: TestClient, admin_headers: dict[str, str], visitors: dict[str, int], encoding: str
) -> None:
    data = csv_bytes(
        [
            ["氏名", "会社名", "メールアドレス", "携帯電話", "会員ID"],
            ["佐藤　太郎", "株式会社サンプル", "ＳＡＴＯ＠ｅｘａｍｐｌｅ．ｊｐ", "", ""],
            ["高橋　一郎", "有限会社テスト", "", "０９０－１２３４－５６７８", ""],
            ["田中　次郎", "", "ー", "", "u-4"],
            ["山田　花子", "", "yamada@example.jp", "", ""],
        ],
        encoding,
    )
    result = changed_by_csv(client, admin_headers, "booth", data)
    assert (result["rows"], result["matched"], result["changed"]) == (4, 3, 3)
    assert errors(result) == [(5, "メールアドレス", "no contact has this email address")]
    assert member_ids(client, admin_headers, "booth") == sorted(
        [visitors["sato"], visitors["takahashi"], visitors["tanaka"]]
    )


def test_a_merged_contacts_id_and_identifiers_lead_to_the_survivor(
    client: TestClient, admin_headers: dict[str, str], visitors: dict[str, int]
) -> None:
    card = contact(client, admin_headers, email="taro.sato@example.jp")
    response = client.post(
        f"/api/v1/contacts/{visitors['sato']}/merge",
        json={"contact_id": card, "reason": "同一人物"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    data = csv_bytes([["id", "email"], [str(card), ""], ["", "taro.sato@example.jp"]])
    result = changed_by_csv(client, admin_headers, "booth", data)
    assert (result["rows"], result["matched"], result["changed"], result["errors"]) == (2, 2, 1, [])
    assert member_ids(client, admin_headers, "booth") == [visitors["sato"]]


def test_remove_and_a_segment_that_reads_the_list_follows(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    visitors: dict[str, int],
) -> None:
    put(
        client, admin_headers, "booth-follow", {"name": "来場者", "condition": {"segment": "booth"}}
    )
    everyone = csv_bytes(
        [
            ["email", "phone", "user_id"],
            ["sato@example.jp", "", ""],
            ["suzuki@example.jp", "", ""],
            ["", "09012345678", ""],
            ["", "", "u-4"],
        ]
    )
    assert changed_by_csv(client, admin_headers, "booth", everyone)["changed"] == 4
    assert member_ids(client, admin_headers, "booth-follow") == sorted(visitors.values())

    leaving = csv_bytes([["email"], ["SATO@example.jp"], ["nobody@example.jp"]])
    result = changed_by_csv(client, admin_headers, "booth", leaving, remove="true")
    assert (result["rows"], result["matched"], result["changed"]) == (2, 1, 1)
    assert errors(result) == [(3, "email", "no contact has this email address")]
    remaining = sorted(c for name, c in visitors.items() if name != "sato")
    assert member_ids(client, admin_headers, "booth") == remaining
    assert member_ids(client, admin_headers, "booth-follow") == remaining
    assert changes(client, admin_headers, "booth")[-1] == (visitors["sato"], False, "api")
    # The segment reading the list changes for the same reason the list did.
    assert changes(client, admin_headers, "booth-follow")[-1] == (visitors["sato"], False, "api")
    # Removing someone who is not a member matches the row and changes nothing.
    again = changed_by_csv(client, admin_headers, "booth", leaving, remove="true")
    assert (again["matched"], again["changed"]) == (1, 0)
    assert_exact(runtime, workspace)


def test_refused_segments_and_files(
    client: TestClient, admin_headers: dict[str, str], visitors: dict[str, int]
) -> None:
    put(
        client, admin_headers, "booth-follow", {"name": "来場者", "condition": {"segment": "booth"}}
    )
    data = csv_bytes([["email"], ["sato@example.jp"]])

    dynamic = post_csv(client, admin_headers, "booth-follow", data)
    assert dynamic.status_code == 409
    assert "dynamic" in error_of(dynamic)["message"]
    missing = post_csv(client, admin_headers, "nope", data)
    assert missing.status_code == 404

    no_column = post_csv(
        client, admin_headers, "booth", csv_bytes([["氏名", "会社名"], ["a", "b"]])
    )
    assert no_column.status_code == 422
    message = error_of(no_column)["message"]
    assert "id, email, phone or user_id" in message
    assert "氏名, 会社名" in message
    assert error_of(no_column)["details"] == [
        {"loc": ["file", "header"], "msg": message, "type": "header"}
    ]
    empty = post_csv(client, admin_headers, "booth", b"")
    assert empty.status_code == 422
    assert error_of(empty)["details"] == [
        {"loc": ["file"], "msg": error_of(empty)["message"], "type": "file"}
    ]
    assert member_ids(client, admin_headers, "booth") == []


def test_cells_that_cannot_be_identifiers_are_reported(
    client: TestClient, admin_headers: dict[str, str], visitors: dict[str, int]
) -> None:
    data = csv_bytes(
        [
            ["id", "user_id", "memo"],
            ["12abc", "", ""],
            ["0", "", ""],
            ["", "null", ""],
            ["", "x" * 201, ""],
            ["99999999", "", ""],
            ["", "u-4"],
            ["", "u-4", "", "", ""],
        ]
    )
    data += b'"broken,quote\r\n'
    result = changed_by_csv(client, admin_headers, "booth", data)
    assert errors(result) == [
        (2, "id", "not a contact id (a whole number)"),
        (3, "id", "not a contact id (a whole number)"),
        (4, "user_id", "a placeholder, not an id"),
        (5, "user_id", "longer than 200 characters"),
        (6, "id", "no contact has this id"),
        (7, None, "2 values, but the header has 3 columns"),
        (9, None, 'bad CSV: a value in quotes is not closed (a " opens it on this line)'),
    ]
    assert [error["type"] for error in result["errors"]][-2:] == ["columns", "csv"]
    assert (result["rows"], result["matched"], result["changed"]) == (8, 1, 1)
    assert member_ids(client, admin_headers, "booth") == [visitors["tanaka"]]


def test_rows_are_looked_up_set_based_and_the_error_list_is_capped(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str], visitors: dict[str, int]
) -> None:
    rows = [["email"], ["sato@example.jp"], *([f"x{n}@example.jp"] for n in range(1200))]
    lookups: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "contact_identities" in statement:
            lookups.append(statement)

    sa.event.listen(runtime.db.engine, "before_cursor_execute", record)
    try:
        result = changed_by_csv(client, admin_headers, "booth", csv_bytes(rows))
    finally:
        sa.event.remove(runtime.db.engine, "before_cursor_execute", record)
    assert len(lookups) == 3  # 1,201 emails, 500 a query
    assert (result["rows"], result["matched"], result["changed"]) == (1201, 1, 1)
    assert result["error_count"] == 1200
    assert len(result["errors"]) == 1000
    assert [e["loc"] for e in result["errors"][:2]] == [["line", 3, "email"], ["line", 4, "email"]]


def test_a_contact_of_another_workspace_is_nobody(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str], visitors: dict[str, int]
) -> None:
    # Contact ids are unique across workspaces: another workspace's id must name nobody here.
    other = bearer(new_workspace(runtime, "別会社").admin_key.key)
    stranger = contact(client, other, email="sato@example.jp")
    result = changed_by_csv(
        client,
        admin_headers,
        "booth",
        csv_bytes([["id"], [str(stranger)], [str(visitors["sato"])]]),
    )
    assert (result["matched"], result["changed"]) == (1, 1)
    assert errors(result) == [(2, "id", "no contact has this id")]
