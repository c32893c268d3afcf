"""Sending ecommerce events and reading orders and carts back, for tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.events.helpers import send


def at(minutes: int) -> str:
    """An event time `minutes` after 2026-04-01 00:00 UTC."""
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"2026-04-{1 + days:02d}T{hour:02d}:{minute:02d}:00+00:00"


def event(name: str, properties: dict[str, Any], *, user: str = "u-1", minute: int = 0) -> Any:
    """A track message for a batch; `user` starting with `anon` is an anonymous id."""
    who = {"anonymousId": user} if user.startswith("anon") else {"userId": user}
    return {
        "type": "track",
        **who,
        "event": name,
        "properties": properties,
        "timestamp": at(minute),
    }


def track(client: TestClient, write_key: str, *messages: dict[str, Any]) -> None:
    send(client, write_key, "batch", {"batch": list(messages)})


def get(client: TestClient, headers: dict[str, str], url: str) -> Any:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def orders(client: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(client, headers, f"/api/v1/orders{query}")["items"]
    return items


def carts(client: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(client, headers, f"/api/v1/carts{query}")["items"]
    return items


def contact_id(client: TestClient, headers: dict[str, str], user_id: str) -> int:
    found = get(client, headers, f"/api/v1/contacts?user_id={user_id}")["items"]
    assert len(found) == 1, found
    return int(found[0]["id"])


def lines(cart: dict[str, Any]) -> dict[str, int]:
    """A cart's lines as product id (or sku, or name) → quantity."""
    return {
        item["product_id"] or item["sku"] or item["name"]: item["quantity"]
        for item in cart["items"]
    }
