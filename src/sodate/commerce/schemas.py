"""Orders and carts as the admin API shows them. Amounts are decimal strings, exact."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from sodate.commerce.models import CartStatus, OrderStatus


class OrderItemOut(BaseModel):
    product_id: str | None
    sku: str | None
    name: str | None
    category: str | None
    price: Decimal | None
    quantity: int
    properties: dict[str, Any]
    """The product's other fields as the shop sent them (brand, variant, url, …)."""


class OrderOut(BaseModel):
    id: int
    contact_id: int
    order_key: str
    """The shop's `order_id`."""
    status: OrderStatus
    currency: str
    total: Decimal
    revenue: Decimal | None
    subtotal: Decimal | None
    tax: Decimal | None
    shipping: Decimal | None
    discount: Decimal | None
    coupon: str | None
    refunded_amount: Decimal
    placed_at: datetime
    properties: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class OrderDetail(OrderOut):
    items: list[OrderItemOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class CartItemOut(BaseModel):
    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    variant: str | None = None
    coupon: str | None = None
    url: str | None = None
    image_url: str | None = None
    price: Decimal | None = None
    quantity: int


class CartOut(BaseModel):
    id: int
    contact_id: int
    cart_key: str | None
    """The shop's `cart_id`; null for the cart of a shop that sends none."""
    status: CartStatus
    currency: str
    value: Decimal
    item_count: int
    items: list[CartItemOut]
    last_activity_at: datetime
    checkout_started_at: datetime | None
    ordered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CartPage(BaseModel):
    items: list[CartOut]
    next_cursor: str | None
