"""Reading the properties of Segment's ecommerce events (spec v2) into safe values.

Shops send what their SDK gives them: numbers as strings, ids as numbers, fields missing. A
value that cannot be read is treated as absent, and amounts are bounded to what the money
columns hold, because one malformed event must never fail the whole batch it arrives in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

DEFAULT_CURRENCY = "JPY"
MAX_MONEY = Decimal("999999999999.99")
MAX_QUANTITY = 1_000_000
CENT = Decimal("0.01")
ID_CHARS = 200
NAME_CHARS = 300


class Ecommerce(StrEnum):
    PRODUCT_ADDED = "Product Added"
    PRODUCT_REMOVED = "Product Removed"
    CART_VIEWED = "Cart Viewed"
    CHECKOUT_STARTED = "Checkout Started"
    ORDER_COMPLETED = "Order Completed"
    ORDER_UPDATED = "Order Updated"
    ORDER_REFUNDED = "Order Refunded"
    ORDER_CANCELLED = "Order Cancelled"


CART_EVENTS = frozenset(
    {
        Ecommerce.PRODUCT_ADDED,
        Ecommerce.PRODUCT_REMOVED,
        Ecommerce.CART_VIEWED,
        Ecommerce.CHECKOUT_STARTED,
    }
)
ORDER_EVENTS = frozenset(
    {
        Ecommerce.ORDER_COMPLETED,
        Ecommerce.ORDER_UPDATED,
        Ecommerce.ORDER_REFUNDED,
        Ecommerce.ORDER_CANCELLED,
    }
)
AMOUNTS = ("total", "revenue", "subtotal", "tax", "shipping", "discount")
# The product fields a cart keeps; an order line keeps every field the shop sent.
CART_ITEM_FIELDS = ("brand", "variant", "coupon", "url", "image_url")
_COLUMN_FIELDS = frozenset({"product_id", "sku", "name", "category", "price", "quantity"})


def bounded(amount: Decimal) -> Decimal:
    return max(-MAX_MONEY, min(MAX_MONEY, amount)).quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) > MAX_MONEY:
        return None
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def text(value: object, limit: int = ID_CHARS) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    stripped = str(value).strip()
    return stripped[:limit] or None


def currency(value: object) -> str | None:
    code = text(value)
    if code is None or len(code) != 3 or not code.isascii() or not code.isalpha():
        return None
    return code.upper()


def quantity(value: object) -> int | None:
    count = money(value)
    if count is None or count != count.to_integral_value() or not 0 <= count <= MAX_QUANTITY:
        return None
    return int(count)


def amounts(properties: Mapping[str, Any]) -> dict[str, Decimal]:
    """The amounts among total, revenue, subtotal, tax, shipping and discount the event gives."""
    found = {name: money(properties.get(name)) for name in AMOUNTS}
    return {name: amount for name, amount in found.items() if amount is not None}


@dataclass(frozen=True)
class Product:
    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    category: str | None = None
    price: Decimal | None = None
    quantity: int = 1
    details: dict[str, Any] = field(default_factory=dict)
    """The product's other fields (brand, variant, url, image_url, coupon, …)."""

    @property
    def line_total(self) -> Decimal:
        return (self.price or Decimal(0)) * self.quantity

    def identity(self) -> dict[str, str]:
        """What tells this product apart in a cart: its ids and variant, else its name."""
        given = {"product_id": self.product_id, "sku": self.sku}
        if not any(given.values()):
            given = {"name": self.name}
        given["variant"] = text(self.details.get("variant"))
        return {key: value for key, value in given.items() if value is not None}


def product(data: object) -> Product | None:
    """A product object of the spec (quantity one unless said); None when it names no product."""
    if not isinstance(data, Mapping):
        return None
    found = Product(
        product_id=text(data.get("product_id")),
        sku=text(data.get("sku")),
        name=text(data.get("name"), NAME_CHARS),
        category=text(data.get("category")),
        price=money(data.get("price")),
        quantity=_one_unless_said(data.get("quantity")),
        details={key: value for key, value in data.items() if key not in _COLUMN_FIELDS},
    )
    if found.product_id is None and found.sku is None and found.name is None:
        return None
    return found


def _one_unless_said(value: object) -> int:
    count = quantity(value)
    return 1 if count is None else count


def products(properties: Mapping[str, Any]) -> list[Product] | None:
    """The event's `products` list; None when it has none (as opposed to an empty list)."""
    listed = properties.get("products")
    if not isinstance(listed, list):
        return None
    return [found for item in listed if (found := product(item)) is not None]


def products_total(listed: list[Product]) -> Decimal:
    return bounded(sum((item.line_total for item in listed), Decimal(0)))
