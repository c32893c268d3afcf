"""Orders in memory: what each order event does to an order, and loading and writing in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.commerce import spec
from sodate.commerce.carts import CHUNK, update_by_id
from sodate.commerce.models import Order, OrderItem, OrderStatus
from sodate.commerce.spec import Product

ORDERS: sa.Table = Order.__table__  # type: ignore[assignment]
ITEMS: sa.Table = OrderItem.__table__  # type: ignore[assignment]
OPTIONAL_AMOUNTS = ("revenue", "subtotal", "tax", "shipping", "discount")


@dataclass(eq=False)
class OrderState:
    contact_id: int
    order_key: str
    placed_at: datetime
    status: str = OrderStatus.PLACED.value
    currency: str = spec.DEFAULT_CURRENCY
    total: Decimal = Decimal(0)
    revenue: Decimal | None = None
    subtotal: Decimal | None = None
    tax: Decimal | None = None
    shipping: Decimal | None = None
    discount: Decimal | None = None
    coupon: str | None = None
    refunded_amount: Decimal = Decimal(0)
    properties: dict[str, Any] | None = None
    items: list[Product] | None = None
    """The order's lines when an event gave them; None leaves the stored lines as they are."""
    id: int | None = None
    changed: bool = True

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> OrderState:
        return cls(
            **{name: row[name] for name in _COLUMNS if name not in ("workspace_id",)},
            id=row["id"],
            changed=False,
        )

    def describe(self, properties: Mapping[str, Any], *, complete: bool) -> None:
        """Take the order's amounts, lines and details from an event.

        `complete` events (Order Completed, and the first event of an order we had not seen)
        state the whole order; Order Updated changes only what it gives.
        """
        given = spec.amounts(properties)
        listed = spec.products(properties)
        if "total" not in given and complete:
            given["total"] = _derived_total(given, listed)
        for name, amount in given.items():
            setattr(self, name, amount)
        self.currency = spec.currency(properties.get("currency")) or self.currency
        self.coupon = spec.text(properties.get("coupon")) or self.coupon
        if listed is not None:
            self.items = listed
        details = {key: value for key, value in properties.items() if key != "products"}
        self.properties = details if complete else {**(self.properties or {}), **details}
        # A corrected total can make a partial refund whole, or the other way round.
        if self.status != OrderStatus.CANCELLED and self.refunded_amount > 0:
            self.status = self._refund_status()
        self.changed = True

    def complete(self, properties: Mapping[str, Any], at: datetime) -> None:
        self.describe(properties, complete=True)
        self.placed_at = min(self.placed_at, at)

    def refund(self, properties: Mapping[str, Any]) -> None:
        """Add a refund: the amount in `total`, else the refunded `products`, else all of it."""
        listed = spec.products(properties)
        amount = spec.money(properties.get("total"))
        if amount is None and listed:
            amount = spec.products_total(listed)
        if amount is None:
            self.refunded_amount = self.total
        else:
            added = spec.bounded(self.refunded_amount + max(amount, Decimal(0)))
            self.refunded_amount = min(self.total, added)
        if self.status != OrderStatus.CANCELLED:
            # Refunding all of an order of no amount still makes it refunded.
            full = amount is None or self.refunded_amount >= self.total
            self.status = OrderStatus.REFUNDED.value if full else self._refund_status()
        self.changed = True

    def cancel(self) -> None:
        self.status = OrderStatus.CANCELLED.value
        self.changed = True

    def _refund_status(self) -> str:
        if self.refunded_amount <= 0:
            return OrderStatus.PLACED.value
        if self.refunded_amount >= self.total:
            return OrderStatus.REFUNDED.value
        return OrderStatus.PARTIALLY_REFUNDED.value

    def row(self, workspace_id: str, now: datetime) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _COLUMNS if name != "workspace_id"}
        values.update(workspace_id=workspace_id, properties=self.properties or {}, updated_at=now)
        if self.id is None:
            values["created_at"] = now
        return values


_COLUMNS = (
    "workspace_id",
    "contact_id",
    "order_key",
    "status",
    "currency",
    "total",
    *OPTIONAL_AMOUNTS,
    "coupon",
    "refunded_amount",
    "placed_at",
    "properties",
)


def _derived_total(given: Mapping[str, Decimal], listed: list[Product] | None) -> Decimal:
    """The spec's total is revenue plus shipping and tax; without revenue, the lines' sum."""
    if "revenue" in given:
        parts = (given.get(name, Decimal(0)) for name in ("revenue", "shipping", "tax"))
        return spec.bounded(sum(parts, Decimal(0)))
    return spec.products_total(listed or [])


def load(session: Session, workspace_id: str, keys: Sequence[str]) -> dict[str, OrderState]:
    found: dict[str, OrderState] = {}
    for start in range(0, len(keys), CHUNK):
        rows = session.execute(
            sa.select(ORDERS).where(
                ORDERS.c.workspace_id == workspace_id,
                ORDERS.c.order_key.in_(keys[start : start + CHUNK]),
            )
        ).mappings()
        found.update((row["order_key"], OrderState.from_row(row)) for row in rows)
    return found


def save(
    session: Session, workspace_id: str, orders: Iterable[OrderState], *, now: datetime
) -> None:
    changed = [order for order in orders if order.changed]
    new = [order for order in changed if order.id is None]
    stored = [order for order in changed if order.id is not None]
    if new:
        # Matched by key rather than by position: ordered RETURNING costs a statement per row
        # on SQLite.
        inserted = session.execute(
            sa.insert(ORDERS).returning(ORDERS.c.order_key, ORDERS.c.id),
            [order.row(workspace_id, now) for order in new],
        )
        ids: dict[str, int] = {order_key: order_id for order_key, order_id in inserted}
        for order in new:
            order.id = ids[order.order_key]
    update_by_id(
        session,
        ORDERS,
        [{"id": order.id, **order.row(workspace_id, now)} for order in stored],
    )
    stale = [order.id for order in stored if order.items is not None]
    for start in range(0, len(stale), CHUNK):
        session.execute(sa.delete(ITEMS).where(ITEMS.c.order_id.in_(stale[start : start + CHUNK])))
    lines = [_item_row(order, item) for order in changed for item in order.items or ()]
    if lines:
        session.execute(sa.insert(ITEMS), lines)


def _item_row(order: OrderState, item: Product) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "product_id": item.product_id,
        "sku": item.sku,
        "name": item.name,
        "category": item.category,
        "price": item.price,
        "quantity": item.quantity,
        "properties": item.details,
    }
