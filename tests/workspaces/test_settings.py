"""Workspace settings: time zone, locale and the sender identity every marketing email shows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from tests.conftest import new_workspace
from tests.workspaces.helpers import error_locs, error_of

URL = "/api/v1/workspace"

SENDER = {
    "name": "株式会社サンプル　マーケティング部",
    "email": "info@example.co.jp",
    "postal_address": "〒１００－０００１　東京都千代田区千代田１－１　サンプルビル３Ｆ",
    "contact": "電話：０３－１２３４－５６７８（平日１０時～１８時）",
}


def _get(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(URL, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_defaults_are_tokyo_japanese_and_an_incomplete_sender(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = _get(client, admin_headers)
    assert body["timezone"] == "Asia/Tokyo"
    assert body["locale"] == "ja"
    assert body["name"] == "株式会社サンプル"
    assert body["sender"] == {
        "name": None,
        "email": None,
        "postal_address": None,
        "contact": None,
        "complete": False,
        "missing": ["name", "email", "postal_address", "contact"],
    }


def test_patch_round_trips_full_width_japanese_and_completes_the_sender(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.patch(
        URL,
        json={"timezone": "America/New_York", "locale": "en", "sender": SENDER},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    for body in (response.json(), _get(client, admin_headers)):
        assert body["timezone"] == "America/New_York"
        assert body["locale"] == "en"
        assert body["sender"] == {**SENDER, "complete": True, "missing": []}


def test_patch_changes_only_the_fields_it_names(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert client.patch(URL, json={"sender": SENDER}, headers=admin_headers).status_code == 200
    response = client.patch(URL, json={"sender": {"name": "サンプル商店"}}, headers=admin_headers)
    assert response.status_code == 200, response.text
    body = _get(client, admin_headers)
    assert body["sender"] == {**SENDER, "name": "サンプル商店", "complete": True, "missing": []}
    assert body["timezone"] == "Asia/Tokyo"
    assert body["locale"] == "ja"


def test_a_partial_sender_lists_what_is_missing(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    partial = {"name": SENDER["name"], "email": SENDER["email"]}
    assert client.patch(URL, json={"sender": partial}, headers=admin_headers).status_code == 200
    sender = _get(client, admin_headers)["sender"]
    assert sender["complete"] is False
    assert sender["missing"] == ["postal_address", "contact"]

    # Clearing a field makes the identity incomplete again.
    client.patch(URL, json={"sender": SENDER}, headers=admin_headers)
    response = client.patch(URL, json={"sender": {"contact": None}}, headers=admin_headers)
    assert response.status_code == 200, response.text
    sender = _get(client, admin_headers)["sender"]
    assert sender["contact"] is None
    assert sender["complete"] is False
    assert sender["missing"] == ["contact"]


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        pytest.param({"timezone": "Asia/Tokio"}, ["body", "timezone"], id="unknown-time-zone"),
        pytest.param({"timezone": "Asia/" + "x" * 300}, ["body", "timezone"], id="huge-time-zone"),
        pytest.param({"timezone": "../../etc/passwd"}, ["body", "timezone"], id="path-time-zone"),
        pytest.param({"timezone": ""}, ["body", "timezone"], id="empty-time-zone"),
        pytest.param({"locale": "fr"}, ["body", "locale"], id="unknown-locale"),
        pytest.param(
            {"sender": {"email": "not-an-email"}}, ["body", "sender", "email"], id="bad-email"
        ),
        pytest.param({"sender": {"name": "   "}}, ["body", "sender", "name"], id="blank-name"),
        pytest.param(
            {"sender": {"postal_address": "あ" * 501}},
            ["body", "sender", "postal_address"],
            id="address-too-long",
        ),
        pytest.param({"colour": "blue"}, ["body", "colour"], id="unknown-field"),
        pytest.param({"sender": {"phone": "03"}}, ["body", "sender", "phone"], id="unknown-sender"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_saved(
    client: TestClient, admin_headers: dict[str, str], patch: dict[str, Any], loc: list[str]
) -> None:
    before = _get(client, admin_headers)
    # Valid changes ride along with the bad one: none of them may be saved.
    body: dict[str, Any] = {"name": "別の名前", "locale": "en"}
    body.update({key: value for key, value in patch.items() if key != "sender"})
    body["sender"] = {"contact": "03-0000-0000", **patch.get("sender", {})}
    response = client.patch(URL, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert loc in error_locs(response), error["details"]
    assert _get(client, admin_headers) == before


def test_a_taken_workspace_name_is_a_conflict_and_nothing_is_saved(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    new_workspace(runtime, "ほかの会社")
    before = _get(client, admin_headers)
    response = client.patch(URL, json={"name": "ほかの会社", "locale": "en"}, headers=admin_headers)
    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "conflict"
    assert _get(client, admin_headers) == before
