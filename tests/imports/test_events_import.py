"""Importing offline events: purchases and survey answers land on the contacts' timelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from sodate.contacts import writes
from sodate.contacts.schemas import ContactUpsert
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.imports.helpers import contacts, errors_of, import_file, write_csv

STORE = "店舗購入"
PURCHASES = [
    ["メールアドレス", "購入日", "商品名", "金額", "会員"],
    ["taro@example.jp", "2026/03/05 14:30", "ノートPC", "￥128,000", "はい"],  # 2
    ["new@example.jp", "2026/03/06", "マウス", "3,000", "いいえ"],  # 3
    ["taro@example.jp", "2026/03/07 10:00", "マウス", "3000", "はい"],  # 4
    ["taro@example.jp", "三月", "マウス", "3000", "はい"],  # 5: bad date
    ["bad-address", "2026/03/07", "マウス", "3000", "はい"],  # 6: bad email
    ["taro@example.jp", "2062/03/07", "マウス", "3000", "はい"],  # 7: a year typed wrong
]
MAPPING = {"金額": "amount:int", "会員": "member:bool", "商品名": "product"}


def _timeline(client: TestClient, headers: dict[str, str], contact_id: int) -> list[Any]:
    response = client.get(f"/api/v1/contacts/{contact_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    return [event for event in response.json()["items"] if event["type"] == "track"]


def test_purchases_land_on_the_timeline_once(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    with runtime.db.transaction() as session:
        taro = writes.upsert_contact(
            session,
            workspace.workspace.id,
            ContactUpsert(email="taro@example.jp"),
            now=runtime.clock.now(),
        )
    path = write_csv(tmp_path / "purchases.csv", PURCHASES, "cp932")
    options: dict[str, Any] = {"kind": "events", "source": STORE, "mapping": MAPPING}
    result = import_file(runtime, workspace.workspace.id, path, event="Offline Purchase", **options)
    assert (result.total, result.created, result.skipped, result.rejected) == (6, 3, 0, 3)
    assert [
        (e.line, e.column, e.reason) for e in errors_of(runtime, workspace.workspace.id, result.id)
    ] == [
        (5, "購入日", "not a date and time (YYYY-MM-DD HH:MM)"),
        (6, "メールアドレス", "not an email address"),
        # It would have made the buyer "seen" until 2062: dormancy would never see them go.
        (7, "購入日", "not a time from 1970-01-02 to a day after the import (check the year)"),
    ]
    events = _timeline(client, admin_headers, taro.contact_id)
    assert [(e["name"], e["timestamp"], e["properties"]) for e in events] == [
        (
            "Offline Purchase",
            "2026-03-07T01:00:00Z",
            {"product": "マウス", "amount": 3000, "member": True},
        ),
        (
            "Offline Purchase",
            "2026-03-05T05:30:00Z",
            {"product": "ノートPC", "amount": 128000, "member": True},
        ),
    ]
    assert events[0]["context"]["source"] == STORE
    # An unknown buyer becomes a contact, tagged with the source.
    [new] = contacts(client, admin_headers, email="new@example.jp")
    assert new["sources"] == [STORE]
    assert new["last_seen_at"] == "2026-03-05T15:00:00Z"  # midnight in Tokyo
    assert len(_timeline(client, admin_headers, new["id"])) == 1

    again = import_file(runtime, workspace.workspace.id, path, event="Offline Purchase", **options)
    assert (again.created, again.skipped, again.rejected) == (0, 3, 3)
    assert len(_timeline(client, admin_headers, taro.contact_id)) == 2
    assert len(contacts(client, admin_headers)) == 2


def test_survey_answers_with_an_event_column(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    rows = [
        ["user_id", "イベント", "回答日時", "満足度", "コメント"],
        ["u-1", "Survey Answered", "2026-03-01T09:00:00+09:00", "5", "とても良い"],
        ["u-1", "", "2026-03-02T09:00:00+09:00", "4", ""],  # no event name
        ["u-1", "Survey Answered", "2026-03-01T09:00:00+09:00", "5", "とても良い"],  # same again
    ]
    path = write_csv(tmp_path / "survey.csv", rows)
    result = import_file(
        runtime,
        workspace.workspace.id,
        path,
        kind="events",
        source="アンケート",
        mapping={"満足度": "satisfaction:int"},
    )
    assert (result.created, result.skipped, result.rejected) == (1, 1, 1)
    [error] = errors_of(runtime, workspace.workspace.id, result.id)
    assert (error.line, error.column, error.reason) == (3, "イベント", "no event name")
    [contact] = contacts(client, admin_headers, user_id="u-1")
    [event] = _timeline(client, admin_headers, contact["id"])
    assert event["properties"] == {"satisfaction": 5, "コメント": "とても良い"}
