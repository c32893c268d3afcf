"""Workspace-isolation cases of the commerce routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.commerce.helpers import event, track
from tests.events.helpers import process_all
from tests.isolation import Pair, case, not_found


def _a_shops(pair: Pair) -> dict[str, Any]:
    """Workspace A gets an order and an open cart; B gets nothing. Returns A's ids."""
    track(
        pair.client,
        pair.a.write_key.key,
        event("Order Completed", {"order_id": "o-1", "total": 1000, "products": [{"sku": "s"}]}),
        event("Product Added", {"product_id": "tea", "price": 500, "cart_id": "c-1"}, minute=1),
    )
    process_all(pair.runtime)
    [order] = pair.get("/api/v1/orders", pair.a_key)["items"]
    [cart] = pair.get("/api/v1/carts", pair.a_key)["items"]
    return {"order": order["id"], "cart": cart["id"], "contact": order["contact_id"]}


@case("GET", "/api/v1/orders")
def _list_orders(pair: Pair) -> None:
    a = _a_shops(pair)
    assert pair.get("/api/v1/orders", pair.b_key) == {"items": [], "next_cursor": None}
    assert pair.get("/api/v1/orders?order_key=o-1", pair.b_key)["items"] == []
    not_found(pair.client.get(f"/api/v1/orders?contact_id={a['contact']}", headers=pair.b_key))
    assert len(pair.get(f"/api/v1/orders?contact_id={a['contact']}", pair.a_key)["items"]) == 1


@case("GET", "/api/v1/orders/{order_id}")
def _get_order(pair: Pair) -> None:
    a = _a_shops(pair)
    not_found(pair.client.get(f"/api/v1/orders/{a['order']}", headers=pair.b_key))
    assert pair.get(f"/api/v1/orders/{a['order']}", pair.a_key)["order_key"] == "o-1"


@case("GET", "/api/v1/carts")
def _list_carts(pair: Pair) -> None:
    a = _a_shops(pair)
    assert pair.get("/api/v1/carts", pair.b_key) == {"items": [], "next_cursor": None}
    assert pair.get("/api/v1/carts?cart_key=c-1", pair.b_key)["items"] == []
    idle = "/api/v1/carts?idle_since=2030-01-01T00:00:00Z"
    assert pair.get(idle, pair.b_key)["items"] == []
    assert len(pair.get(idle, pair.a_key)["items"]) == 1
    not_found(pair.client.get(f"/api/v1/carts?contact_id={a['contact']}", headers=pair.b_key))


@case("GET", "/api/v1/carts/{cart_id}")
def _get_cart(pair: Pair) -> None:
    a = _a_shops(pair)
    not_found(pair.client.get(f"/api/v1/carts/{a['cart']}", headers=pair.b_key))
    assert pair.get(f"/api/v1/carts/{a['cart']}", pair.a_key)["cart_key"] == "c-1"
