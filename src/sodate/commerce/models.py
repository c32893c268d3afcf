"""Tables of orders, their line items, and carts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument

Money = sa.Numeric(14, 2)


class OrderStatus(StrEnum):
    PLACED = "placed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class CartStatus(StrEnum):
    OPEN = "open"
    CHECKOUT = "checkout"
    """Checkout started and no order yet: still a cart that can be abandoned."""
    ORDERED = "ordered"


OPEN_CART_STATUSES = (CartStatus.OPEN.value, CartStatus.CHECKOUT.value)


class Order(Base):
    """An order as the shop reported it; `order_key` is the shop's `order_id`."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "order_key"),
        sa.Index("ix_orders_workspace_id_placed_at", "workspace_id", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    contact_id: Mapped[int] = mapped_column(BigId, index=True)
    order_key: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(32))
    currency: Mapped[str] = mapped_column(sa.String(3))
    total: Mapped[Decimal] = mapped_column(Money)
    revenue: Mapped[Decimal | None] = mapped_column(Money)
    subtotal: Mapped[Decimal | None] = mapped_column(Money)
    tax: Mapped[Decimal | None] = mapped_column(Money)
    shipping: Mapped[Decimal | None] = mapped_column(Money)
    discount: Mapped[Decimal | None] = mapped_column(Money)
    coupon: Mapped[str | None] = mapped_column(sa.String(200))
    refunded_amount: Mapped[Decimal] = mapped_column(Money)
    placed_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderItem(Base):
    """A line of an order; the product's other fields (brand, variant, url…) are `properties`."""

    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[str | None] = mapped_column(sa.String(200))
    sku: Mapped[str | None] = mapped_column(sa.String(200))
    name: Mapped[str | None] = mapped_column(sa.String(300))
    category: Mapped[str | None] = mapped_column(sa.String(200))
    price: Mapped[Decimal | None] = mapped_column(Money)
    quantity: Mapped[int]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class Cart(Base):
    """A shopping cart. `cart_key` is the shop's `cart_id`; null for a shop that sends none.

    Cart-abandonment triggers look for open carts with items whose last activity is older than
    some time, hence the index on (workspace, status, last activity).
    """

    __tablename__ = "carts"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "cart_key"),
        sa.Index(
            "ix_carts_workspace_id_status_last_activity_at",
            "workspace_id",
            "status",
            "last_activity_at",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    contact_id: Mapped[int] = mapped_column(BigId, index=True)
    cart_key: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(32))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    item_count: Mapped[int]
    value: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3))
    last_activity_at: Mapped[datetime]
    checkout_started_at: Mapped[datetime | None]
    ordered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
