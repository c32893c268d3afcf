"""The commerce step is set-based: its queries do not grow with the number of events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate import pipeline
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.commerce.helpers import carts, event, lines, orders, track
from tests.events.helpers import process_all

COMMERCE_TABLES = ("orders", "order_items", "carts")


@contextmanager
def commerce_statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if any(table in statement for table in COMMERCE_TABLES):
            seen.append(statement)

    sa.event.listen(runtime.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(runtime.db.engine, "before_cursor_execute", record)


def shop(people: int, round_: int) -> list[dict[str, Any]]:
    """Every person adds, removes, checks out, orders, and has the order refunded in part."""
    messages = []
    for n in range(people):
        user, order = f"u-{n}", {"order_id": f"o-{round_}-{n}", "total": 5000}
        messages += [
            event("Product Added", {"product_id": "tea", "price": 1200}, user=user, minute=1),
            event("Product Added", {"product_id": "pot", "price": 3800}, user=user, minute=2),
            event("Product Removed", {"product_id": "tea"}, user=user, minute=3),
            event("Checkout Started", {"products": [{"product_id": "pot"}]}, user=user, minute=4),
            event("Order Completed", {**order, "products": [{"product_id": "pot"}]}, user=user),
            event("Order Refunded", {**order, "total": 1000}, user=user, minute=6),
        ]
    return messages


def test_statements_do_not_grow_with_the_batch(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    counts = []
    for round_, people in enumerate((2, 10)):
        # The people exist and shopped before, so existing orders and carts are in play too.
        track(client, key, *shop(people, round_ + 10))
        process_all(runtime)
        updates = [
            event("Order Updated", {"order_id": f"o-{round_ + 10}-{n}", "tax": 10}, user=f"u-{n}")
            for n in range(people)
        ]
        track(client, key, *shop(people, round_), *updates)
        with commerce_statements(runtime) as statements:
            process_all(runtime)
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 8, counts
    assert len(orders(client, admin_headers, "?status=partially_refunded&limit=500")) == 24


def test_a_batch_that_fails_later_leaves_no_trace_and_counts_once_when_rerun(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    track(client, workspace.write_key.key, *shop(1, 0), event("Product Added", {"sku": "s"}))

    def crash(_session: Any, _batch: Any) -> None:
        raise RuntimeError("a later step fails")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "STEPS", (*pipeline.STEPS, crash))
        with pytest.raises(RuntimeError):
            process_all(runtime)
    assert orders(client, admin_headers) == []
    assert carts(client, admin_headers) == []

    process_all(runtime)
    [order] = orders(client, admin_headers)
    assert (order["status"], order["refunded_amount"]) == ("partially_refunded", "1000.00")
    by_status = {cart["status"]: cart for cart in carts(client, admin_headers)}
    assert {status: lines(cart) for status, cart in by_status.items()} == {
        "ordered": {"pot": 1},
        "open": {"s": 1},
    }
