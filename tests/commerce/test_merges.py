"""A merged contact's orders and carts follow the survivor; two carts without id become one."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from sodate.clock import ManualClock
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.commerce.helpers import carts, contact_id, event, get, lines, orders, track
from tests.events.helpers import process_all, send

TEA = {"product_id": "tea", "price": 1200}
POT = {"product_id": "pot", "price": 3000}
CUP = {"product_id": "cup", "price": 500}


def test_identity_merge_moves_orders_and_joins_open_carts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Order Completed", {"order_id": "o-known", "total": 100}, user="u-1", minute=0),
        event("Product Added", POT, user="u-1", minute=1),
        event("Product Added", CUP, user="u-1", minute=1),
        event("Order Completed", {"order_id": "o-anon", "total": 200}, user="anon-2", minute=2),
        event("Product Added", {**TEA, "quantity": 2}, user="anon-2", minute=3),
        event("Product Added", {**POT, "quantity": 3}, user="anon-2", minute=3),
        event("Product Added", {**TEA, "cart_id": "c-9"}, user="anon-2", minute=4),
    )
    process_all(runtime)
    changed_at = max(c["updated_at"] for c in carts(client, admin_headers) if not c["cart_key"])
    anonymous = get(client, admin_headers, "/api/v1/contacts?anonymous_id=anon-2")["items"][0]
    known = contact_id(client, admin_headers, "u-1")
    assert anonymous["id"] != known

    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=1))
    send(client, key, "track", {"userId": "u-1", "anonymousId": "anon-2", "event": "Signed In"})
    process_all(runtime)

    assert {o["order_key"] for o in orders(client, admin_headers, f"?contact_id={known}")} == {
        "o-known",
        "o-anon",
    }
    # The merged contact's id still finds them: they followed the survivor.
    following = orders(client, admin_headers, f"?contact_id={anonymous['id']}")
    assert {o["contact_id"] for o in following} == {known}
    assert len(following) == 2
    by_key = {cart["cart_key"]: cart for cart in carts(client, admin_headers)}
    assert set(by_key) == {None, "c-9"}
    assert {cart["contact_id"] for cart in by_key.values()} == {known}
    # The later cart takes in the other: the larger quantity of a product in both, not the
    # sum, and a product in the other alone. It was last changed when either was.
    joined = by_key[None]
    assert lines(joined) == {"tea": 2, "pot": 3, "cup": 1}
    assert (joined["item_count"], joined["value"]) == (6, "11900.00")
    assert joined["last_activity_at"] == "2026-04-01T00:03:00Z"
    assert joined["updated_at"] == changed_at


def test_merge_through_the_api_joins_carts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Product Added", TEA, user="u-1", minute=5),
        event("Checkout Started", {}, user="u-1", minute=6),
        event("Product Added", POT, user="u-2", minute=1),
        event("Order Completed", {"order_id": "o-2"}, user="u-2", minute=2),
        event("Product Added", POT, user="u-2", minute=3),
    )
    process_all(runtime)
    survivor, merged = (contact_id(client, admin_headers, u) for u in ("u-1", "u-2"))

    response = client.post(
        f"/api/v1/contacts/{survivor}/merge", json={"contact_id": merged}, headers=admin_headers
    )
    assert response.status_code == 200, response.text

    assert [o["contact_id"] for o in orders(client, admin_headers)] == [survivor]
    mine = carts(client, admin_headers, f"?contact_id={survivor}")
    assert sorted((cart["status"], sorted(lines(cart))) for cart in mine) == [
        ("checkout", ["pot", "tea"]),
        ("ordered", ["pot"]),
    ]
