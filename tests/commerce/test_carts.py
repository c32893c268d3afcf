"""Carts from Product Added / Removed, Cart Viewed, Checkout Started and Order Completed."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from sodate.clock import ManualClock
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.commerce.helpers import at, carts, event, get, lines, track
from tests.events.helpers import process_all

TEA = {"product_id": "tea", "name": "抹茶", "price": 1200}
POT = {"product_id": "pot", "name": "急須", "price": 3000}


def test_adding_and_removing_keeps_one_open_cart(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Product Viewed", TEA, minute=1),
        event("Product Added", {**TEA, "quantity": 2}, minute=2),
        event("Product Added", {**POT, "brand": "常滑", "variant": "黒"}, minute=3),
        event("Product Added", {**TEA, "price": 1100}, minute=4),
    )
    process_all(runtime)
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=1))
    track(client, key, event("Product Removed", {"product_id": "tea", "quantity": 1}, minute=5))
    process_all(runtime)

    [cart] = carts(client, admin_headers)
    assert (cart["created_at"], cart["updated_at"]) == (
        "2026-04-01T00:00:00Z",
        "2026-04-01T00:01:00Z",
    )
    assert cart["cart_key"] is None
    assert cart["status"] == "open"
    assert lines(cart) == {"tea": 2, "pot": 1}
    assert cart["item_count"] == 3
    assert cart["value"] == "5200.00"  # the latest price of tea, 1,100, twice; one pot
    assert cart["currency"] == "JPY"
    assert cart["last_activity_at"] == "2026-04-01T00:05:00Z"
    pot = next(item for item in cart["items"] if item["product_id"] == "pot")
    assert (pot["brand"], pot["variant"], pot["price"]) == ("常滑", "黒", "3000.00")
    assert get(client, admin_headers, f"/api/v1/carts/{cart['id']}") == cart

    track(
        client,
        key,
        event("Product Removed", {"product_id": "tea"}, minute=6),
        event("Product Removed", {"product_id": "unknown"}, minute=7),
    )
    process_all(runtime)
    [cart] = carts(client, admin_headers)
    assert lines(cart) == {"pot": 1}


def test_cart_ids_name_carts_and_checkout_then_order_closes_them(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Product Added", {**TEA, "cart_id": "c-1"}, minute=1),
        event("Product Added", {**POT, "cart_id": "c-2"}, minute=2),
        # Without a cart id an event is about the contact's latest cart: c-2.
        event("Product Added", {**TEA}, minute=3),
        event(
            "Checkout Started",
            {"cart_id": "c-1", "currency": "usd", "products": [{**TEA, "quantity": 3}]},
            minute=4,
        ),
    )
    process_all(runtime)
    by_key = {cart["cart_key"]: cart for cart in carts(client, admin_headers)}
    assert set(by_key) == {"c-1", "c-2"}
    assert (by_key["c-1"]["status"], lines(by_key["c-1"])) == ("checkout", {"tea": 3})
    assert by_key["c-1"]["checkout_started_at"] == "2026-04-01T00:04:00Z"
    assert by_key["c-1"]["currency"] == "USD"
    assert (by_key["c-2"]["status"], lines(by_key["c-2"])) == ("open", {"pot": 1, "tea": 1})

    track(client, key, event("Order Completed", {"order_id": "o-1", "total": 3600}, minute=9))
    process_all(runtime)
    closed = carts(client, admin_headers)
    assert {(c["cart_key"], c["status"], c["ordered_at"]) for c in closed} == {
        ("c-1", "ordered", "2026-04-01T00:09:00Z"),
        ("c-2", "ordered", "2026-04-01T00:09:00Z"),
    }

    # Without a cart id and no open cart, a new cart opens; an ordered cart stays as it was,
    # unless the shop fills it again under its id: then it starts afresh.
    track(
        client,
        key,
        event("Product Added", {**TEA}, minute=10),
        event("Product Removed", {**TEA, "cart_id": "c-2"}, minute=11),
        event("Product Added", {**POT, "cart_id": "c-1"}, minute=12),
    )
    process_all(runtime)
    by_key = {cart["cart_key"]: cart for cart in carts(client, admin_headers)}
    assert (by_key[None]["status"], lines(by_key[None])) == ("open", {"tea": 1})
    assert (by_key["c-1"]["status"], lines(by_key["c-1"])) == ("open", {"pot": 1})
    assert (by_key["c-1"]["ordered_at"], by_key["c-1"]["checkout_started_at"]) == (None, None)
    assert (by_key["c-2"]["status"], lines(by_key["c-2"])) == ("ordered", {"pot": 1, "tea": 1})


def test_cart_viewed_sets_the_cart_and_a_cart_id_follows_its_shopper(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Cart Viewed", {"cart_id": "c-1"}, minute=1),
        event("Product Added", {**TEA, "cart_id": "c-1"}, minute=2),
        event("Cart Viewed", {"cart_id": "c-1", "products": [POT, POT]}, minute=3),
        event("Product Added", {**TEA, "cart_id": "c-1"}, user="u-2", minute=4),
    )
    process_all(runtime)
    [cart] = carts(client, admin_headers)
    assert lines(cart) == {"pot": 2, "tea": 1}
    u2 = get(client, admin_headers, "/api/v1/contacts?user_id=u-2")["items"][0]["id"]
    assert cart["contact_id"] == u2


def test_idle_since_finds_abandoned_carts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Product Added", TEA, user="u-open", minute=10),
        event("Product Added", TEA, user="u-checkout", minute=20),
        event("Checkout Started", {}, user="u-checkout", minute=30),
        event("Product Added", TEA, user="u-recent", minute=24 * 60),
        event("Product Added", TEA, user="u-emptied", minute=10),
        event("Product Removed", TEA, user="u-emptied", minute=11),
        event("Product Added", TEA, user="u-bought", minute=10),
        event("Order Completed", {"order_id": "o"}, user="u-bought", minute=11),
    )
    process_all(runtime)

    since = at(60).replace("+", "%2B")
    idle = carts(client, admin_headers, f"?idle_since={since}")
    owners = {cart["contact_id"] for cart in idle}
    users = {
        contact["user_id"]: contact["id"]
        for contact in get(client, admin_headers, "/api/v1/contacts")["items"]
    }
    assert owners == {users["u-open"], users["u-checkout"]}
    # Without an offset, the workspace's time (Asia/Tokyo): 10:00 there is 01:00 UTC.
    local = carts(client, admin_headers, "?idle_since=2026-04-01T10:00")
    assert {cart["contact_id"] for cart in local} == owners
    assert carts(client, admin_headers, "?idle_since=2026-04-01T09:05") == []
    only_checkout = carts(client, admin_headers, f"?idle_since={since}&status=checkout")
    assert [cart["contact_id"] for cart in only_checkout] == [users["u-checkout"]]
    assert len(carts(client, admin_headers, "?status=open&status=checkout")) == 4
    mine = carts(client, admin_headers, f"?contact_id={users['u-bought']}")
    assert [cart["status"] for cart in mine] == ["ordered"]
    assert client.get("/api/v1/carts/999999", headers=admin_headers).status_code == 404
