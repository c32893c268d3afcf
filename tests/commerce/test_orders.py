"""Orders from Order Completed / Updated / Refunded / Cancelled, through the tracking API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.commerce.helpers import at, contact_id, event, get, orders, track
from tests.events.helpers import process_all, send
from tests.workspaces.helpers import error_of

COMPLETED: dict[str, Any] = {
    "order_id": "ord-1",
    "checkout_id": "chk-1",
    "total": 3630,
    "revenue": 3000,
    "subtotal": 3300,
    "shipping": 300,
    "tax": 330,
    "discount": 300,
    "coupon": "SPRING",
    "currency": "jpy",
    "products": [
        {"product_id": "p-1", "sku": "SKU-1", "name": "抹茶", "price": 1200, "quantity": 2},
        {"product_id": "p-2", "name": "急須", "price": "900", "brand": "常滑", "variant": "黒"},
    ],
}


def test_order_completed_records_the_order_with_its_lines(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    track(client, workspace.write_key.key, event("Order Completed", COMPLETED, minute=5))
    process_all(runtime)

    [order] = orders(client, admin_headers)
    assert order["contact_id"] == contact_id(client, admin_headers, "u-1")
    assert order["order_key"] == "ord-1"
    assert order["status"] == "placed"
    assert order["currency"] == "JPY"
    assert [order[k] for k in ("total", "revenue", "subtotal", "shipping", "tax", "discount")] == [
        "3630.00",
        "3000.00",
        "3300.00",
        "300.00",
        "330.00",
        "300.00",
    ]
    assert order["coupon"] == "SPRING"
    assert order["refunded_amount"] == "0.00"
    assert order["placed_at"] == "2026-04-01T00:05:00Z"
    assert order["properties"]["checkout_id"] == "chk-1"
    assert "products" not in order["properties"]

    detail = get(client, admin_headers, f"/api/v1/orders/{order['id']}")
    assert [
        (i["product_id"], i["sku"], i["name"], i["price"], i["quantity"]) for i in detail["items"]
    ] == [
        ("p-1", "SKU-1", "抹茶", "1200.00", 2),
        ("p-2", None, "急須", "900.00", 1),
    ]
    assert detail["items"][1]["properties"] == {"brand": "常滑", "variant": "黒"}


def test_the_same_order_again_updates_it_instead_of_adding_one(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(client, key, event("Order Completed", COMPLETED, minute=5))
    process_all(runtime)
    corrected = {
        **COMPLETED,
        "total": 1500,
        "products": [{"product_id": "p-3", "price": 1500}],
    }
    # Twice more: once in its own batch, once twice within one batch.
    track(client, key, event("Order Completed", corrected, minute=9))
    process_all(runtime)
    track(
        client,
        key,
        event("Order Completed", corrected, minute=9),
        event("Order Completed", corrected, minute=10),
    )
    process_all(runtime)

    [order] = orders(client, admin_headers)
    assert order["total"] == "1500.00"
    assert order["placed_at"] == "2026-04-01T00:05:00Z"
    detail = get(client, admin_headers, f"/api/v1/orders/{order['id']}")
    assert [(i["product_id"], i["quantity"]) for i in detail["items"]] == [("p-3", 1)]


def test_updates_refunds_and_cancellation(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event("Order Completed", {**COMPLETED, "order_id": "A"}, minute=1),
        event("Order Completed", {**COMPLETED, "order_id": "B"}, minute=2),
        event("Order Completed", {**COMPLETED, "order_id": "C"}, minute=3),
        event("Order Updated", {"order_id": "A", "shipping": 500, "note": "gift"}, minute=4),
        event("Order Refunded", {"order_id": "A", "total": 1000}, minute=5),
        event(
            "Order Refunded",
            {"order_id": "B", "products": [{"product_id": "p-1", "price": 1200, "quantity": 1}]},
            minute=6,
        ),
        event("Order Cancelled", {"order_id": "C"}, minute=7),
    )
    process_all(runtime)
    by_key = {order["order_key"]: order for order in orders(client, admin_headers)}
    a, b, c = by_key["A"], by_key["B"], by_key["C"]
    assert (a["status"], a["refunded_amount"], a["shipping"]) == (
        "partially_refunded",
        "1000.00",
        "500.00",
    )
    assert a["total"] == "3630.00"
    assert a["properties"]["note"] == "gift"
    assert a["properties"]["coupon"] == "SPRING"
    assert (b["status"], b["refunded_amount"]) == ("partially_refunded", "1200.00")
    assert c["status"] == "cancelled"

    track(
        client,
        key,
        event("Order Refunded", {"order_id": "A", "total": 5000}, minute=8),
        event("Order Refunded", {"order_id": "B"}, minute=9),
    )
    process_all(runtime)
    by_key = {order["order_key"]: order for order in orders(client, admin_headers)}
    assert (by_key["A"]["status"], by_key["A"]["refunded_amount"]) == ("refunded", "3630.00")
    assert (by_key["B"]["status"], by_key["B"]["refunded_amount"]) == ("refunded", "3630.00")
    assert [o["order_key"] for o in orders(client, admin_headers, "?status=cancelled")] == ["C"]
    assert {o["order_key"] for o in orders(client, admin_headers, "?status=refunded")} == {"A", "B"}

    # Completing again corrects the order but neither undoes a refund nor a cancellation.
    track(
        client,
        key,
        event("Order Completed", {"order_id": "A", "total": 7260}, minute=10),
        event("Order Completed", {"order_id": "C", "total": 10}, minute=10),
    )
    process_all(runtime)
    by_key = {order["order_key"]: order for order in orders(client, admin_headers)}
    assert (by_key["A"]["status"], by_key["A"]["refunded_amount"]) == (
        "partially_refunded",
        "3630.00",
    )
    assert (by_key["C"]["status"], by_key["C"]["total"]) == ("cancelled", "10.00")


def test_odd_input_is_read_as_well_as_it_can_be_and_never_fails_the_batch(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        event(
            "Order Completed",
            {
                "order_id": 12345,
                "total": "1e20",
                "revenue": "free",
                "currency": "円",
                "coupon": True,
                "products": [
                    {"product_id": 7, "price": 10**15, "quantity": 10**9},
                    {"name": "x" * 400, "price": 9.999, "quantity": "3"},
                    {"price": 100},
                    "not a product",
                ],
            },
        ),
        event("Order Completed", {"revenue": 800, "shipping": 200, "tax": 80}, minute=1),
        event("Order Updated", {"total": 10}),
        event("Order Refunded", {"order_id": "never-seen", "total": 700}, minute=2),
        event("Signed Up", {"order_id": "not commerce"}),
    )
    assert process_all(runtime) == 5

    by_key = {order["order_key"]: order for order in orders(client, admin_headers)}
    assert len(by_key) == 3
    odd = by_key["12345"]
    assert (odd["total"], odd["revenue"], odd["currency"], odd["coupon"]) == (
        "30.00",
        None,
        "JPY",
        None,
    )
    items = get(client, admin_headers, f"/api/v1/orders/{odd['id']}")["items"]
    assert [(i["product_id"], i["name"], i["price"], i["quantity"]) for i in items] == [
        ("7", None, None, 1),
        (None, "x" * 300, "10.00", 3),
    ]
    # Without an order id, the message is the order: total is revenue + shipping + tax.
    [unnamed] = [o for k, o in by_key.items() if k not in ("12345", "never-seen")]
    assert unnamed["total"] == "1080.00"
    # A refund of an order never seen records what it knows.
    refunded = by_key["never-seen"]
    assert (refunded["status"], refunded["total"], refunded["refunded_amount"]) == (
        "refunded",
        "700.00",
        "700.00",
    )


def test_listing_filters_and_pages(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    track(
        client,
        key,
        *[
            event(
                "Order Completed", {"order_id": f"o{n}", "total": 100}, user=f"u-{n % 2}", minute=n
            )
            for n in range(5)
        ],
    )
    process_all(runtime)

    newest_first = [o["order_key"] for o in orders(client, admin_headers)]
    assert newest_first == ["o4", "o3", "o2", "o1", "o0"]
    page = get(client, admin_headers, "/api/v1/orders?limit=2")
    assert [o["order_key"] for o in page["items"]] == ["o4", "o3"]
    page = get(client, admin_headers, f"/api/v1/orders?limit=2&cursor={page['next_cursor']}")
    assert [o["order_key"] for o in page["items"]] == ["o2", "o1"]
    page = get(client, admin_headers, f"/api/v1/orders?limit=2&cursor={page['next_cursor']}")
    assert ([o["order_key"] for o in page["items"]], page["next_cursor"]) == (["o0"], None)

    window = f"?placed_after={at(1)}&placed_before={at(3)}".replace("+", "%2B")
    assert [o["order_key"] for o in orders(client, admin_headers, window)] == ["o2", "o1"]
    odd = contact_id(client, admin_headers, "u-1")
    assert [o["order_key"] for o in orders(client, admin_headers, f"?contact_id={odd}")] == [
        "o3",
        "o1",
    ]
    assert [o["order_key"] for o in orders(client, admin_headers, "?order_key=o2")] == ["o2"]

    # Without an offset, a time or a date is the workspace's (Asia/Tokyo): the orders were
    # placed from 09:00 on 1 April there.
    local = "?placed_after=2026-04-01T09:02&placed_before=2026-04-01T09:04"
    assert [o["order_key"] for o in orders(client, admin_headers, local)] == ["o3", "o2"]
    assert len(orders(client, admin_headers, "?placed_after=2026-04-01")) == 5
    assert orders(client, admin_headers, "?placed_before=2026-04-01") == []
    # A misspelt filter is refused, not ignored: the whole list would look filtered.
    misspelt = client.get("/api/v1/orders?placed_afer=2026-04-01", headers=admin_headers)
    assert misspelt.status_code == 422, misspelt.text
    assert error_of(misspelt)["details"][0]["loc"] == ["query", "placed_afer"]
    assert "placed_after" in error_of(misspelt)["details"][0]["msg"]
    for not_a_time in ("1%20April", "20260401"):  # digits would be seconds since 1970
        response = client.get(f"/api/v1/orders?placed_after={not_a_time}", headers=admin_headers)
        assert response.status_code == 422, response.text
    # A time the clocks skipped is no instant: refused, naming the parameter.
    moved = client.patch(
        "/api/v1/workspace", json={"timezone": "America/New_York"}, headers=admin_headers
    )
    assert moved.status_code == 200, moved.text
    assert len(orders(client, admin_headers, "?placed_after=2026-03-31T20:01")) == 4  # EDT
    skipped = client.get("/api/v1/orders?placed_after=2026-03-08T02:30", headers=admin_headers)
    assert skipped.status_code == 422, skipped.text
    assert error_of(skipped)["details"][0]["loc"] == ["query", "placed_after"]
    assert "America/New_York" in error_of(skipped)["message"]
    assert client.get("/api/v1/orders/999999", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/orders?contact_id=999999", headers=admin_headers).status_code == 404


def test_identify_then_order_lands_on_the_known_contact(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    send(client, key, "identify", {"userId": "u-9", "traits": {"email": "hanako@example.jp"}})
    track(client, key, event("Order Completed", COMPLETED, user="u-9"))
    process_all(runtime)
    [order] = orders(client, admin_headers)
    assert order["contact_id"] == contact_id(client, admin_headers, "u-9")
