"""Carts in memory: their lines and states, loaded and written in bulk.

A cart's lines are a JSON list on the cart row, so a batch loads each cart once, changes it any
number of times in memory and writes it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.commerce import spec
from sodate.commerce.models import OPEN_CART_STATUSES, Cart, CartStatus
from sodate.commerce.spec import Product
from sodate.db.bulk import driver_values, execute_many
from sodate.db.plans import workspace_check

CARTS: sa.Table = Cart.__table__  # type: ignore[assignment]
CHUNK = 500
MAX_ITEM_COUNT = 2_000_000_000
Line = dict[str, Any]


@dataclass(eq=False)
class CartState:
    contact_id: int
    cart_key: str | None
    last_activity_at: datetime
    status: str = CartStatus.OPEN.value
    currency: str = spec.DEFAULT_CURRENCY
    items: list[Line] = field(default_factory=list)
    checkout_started_at: datetime | None = None
    ordered_at: datetime | None = None
    id: int | None = None
    updated_at: datetime | None = None
    changed: bool = True

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> CartState:
        return cls(
            id=row["id"],
            contact_id=row["contact_id"],
            cart_key=row["cart_key"],
            status=row["status"],
            currency=row["currency"],
            items=list(row["items"]),
            last_activity_at=row["last_activity_at"],
            checkout_started_at=row["checkout_started_at"],
            ordered_at=row["ordered_at"],
            updated_at=row["updated_at"],
            changed=False,
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CART_STATUSES

    @property
    def item_count(self) -> int:
        return min(MAX_ITEM_COUNT, sum(int(line["quantity"]) for line in self.items))

    @property
    def value(self) -> Decimal:
        return spec.bounded(
            sum(
                (line_price(line) * line["quantity"] for line in self.items),
                Decimal(0),
            )
        )

    def touch(self, at: datetime, currency: str | None) -> None:
        self.last_activity_at = max(self.last_activity_at, at)
        self.currency = currency or self.currency
        self.changed = True

    def add(self, product: Product) -> None:
        if product.quantity == 0:
            return
        line = self._line_of(product)
        if line is None:
            self.items.append(_line(product))
            return
        line["quantity"] = min(spec.MAX_QUANTITY, line["quantity"] + product.quantity)
        # The latest event knows the current price and name best.
        line.update(_line(product, quantity=line["quantity"]))

    def remove(self, product: Product, quantity: int | None) -> None:
        """Take `quantity` of the product out of the cart; all of it when no quantity is said."""
        line = self._line_of(product)
        if line is None:
            return
        if quantity is None or quantity >= line["quantity"]:
            self.items.remove(line)
        else:
            line["quantity"] -= quantity

    def replace(self, products: Iterable[Product]) -> None:
        self.items = []
        for product in products:
            self.add(product)

    def reopen(self) -> None:
        """An ordered cart that the shop fills again under the same cart id starts afresh."""
        self.status = CartStatus.OPEN.value
        self.items = []
        self.checkout_started_at = None
        self.ordered_at = None

    def start_checkout(self, at: datetime) -> None:
        self.status = CartStatus.CHECKOUT.value
        self.checkout_started_at = at

    def close(self, at: datetime) -> None:
        self.status = CartStatus.ORDERED.value
        self.ordered_at = at
        self.changed = True

    def absorb(self, other: CartState) -> None:
        """Take in another open cart of the same person (two devices, one shopper).

        A product in both carts keeps the larger quantity rather than the sum: the two carts
        usually hold the same intention, seen from two sessions.
        """
        for theirs in other.items:
            mine = _matching(self.items, _identity(theirs))
            if mine is None:
                self.items.append(dict(theirs))
            else:
                mine["quantity"] = max(mine["quantity"], theirs["quantity"])
        self.last_activity_at = max(self.last_activity_at, other.last_activity_at)
        self.changed = True

    def _line_of(self, product: Product) -> Line | None:
        return _matching(self.items, product.identity())

    def row(self, workspace_id: str, now: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {
            "workspace_id": workspace_id,
            "contact_id": self.contact_id,
            "cart_key": self.cart_key,
            "status": self.status,
            "items": self.items,
            "item_count": self.item_count,
            "value": self.value,
            "currency": self.currency,
            "last_activity_at": self.last_activity_at,
            "checkout_started_at": self.checkout_started_at,
            "ordered_at": self.ordered_at,
            "updated_at": now,
        }
        if self.id is None:
            values["created_at"] = now
        return values


def line_price(line: Mapping[str, Any]) -> Decimal:
    price = spec.money(line.get("price"))
    return Decimal(0) if price is None else price


def _line(product: Product, *, quantity: int | None = None) -> Line:
    fields: dict[str, Any] = {
        "product_id": product.product_id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        # JSON has no decimal type; a string keeps the amount exact.
        "price": None if product.price is None else str(product.price),
        **{name: spec.text(product.details.get(name), 2000) for name in spec.CART_ITEM_FIELDS},
    }
    line = {name: value for name, value in fields.items() if value is not None}
    line["quantity"] = product.quantity if quantity is None else quantity
    return line


def _identity(line: Mapping[str, Any]) -> dict[str, str]:
    return Product(
        product_id=line.get("product_id"),
        sku=line.get("sku"),
        name=line.get("name"),
        details={"variant": line.get("variant")},
    ).identity()


def _matching(lines: list[Line], identity: Mapping[str, str]) -> Line | None:
    if not identity:
        return None
    return next(
        (line for line in lines if all(line.get(k) == v for k, v in identity.items())), None
    )


def load(
    session: Session, workspace_id: str, *, keys: Sequence[str], open_of: Sequence[int]
) -> list[CartState]:
    """The carts named by these keys, and every open cart of these contacts.

    Two queries, each on its own index: as one `OR`, SQLite read every cart of the workspace."""
    found: dict[int, CartState] = {}
    for start in range(0, len(keys), CHUNK):
        by_key = sa.select(CARTS).where(
            CARTS.c.workspace_id == workspace_id, CARTS.c.cart_key.in_(keys[start : start + CHUNK])
        )
        for row in session.execute(by_key).mappings():
            found.setdefault(row["id"], CartState.from_row(row))
    for start in range(0, len(open_of), CHUNK):
        by_contact = sa.select(CARTS).where(
            workspace_check(CARTS.c.workspace_id, workspace_id),
            CARTS.c.contact_id.in_(open_of[start : start + CHUNK]),
            CARTS.c.status.in_(OPEN_CART_STATUSES),
        )
        for row in session.execute(by_contact).mappings():
            found.setdefault(row["id"], CartState.from_row(row))
    return sorted(found.values(), key=lambda cart: cart.id or 0)


def save(session: Session, workspace_id: str, carts: Iterable[CartState], *, now: datetime) -> None:
    changed = [cart for cart in carts if cart.changed]
    new = [cart.row(workspace_id, now) for cart in changed if cart.id is None]
    if new:
        session.execute(sa.insert(CARTS), new)
    update_stored(session, [(cart, now) for cart in changed if cart.id is not None])


_UPDATE = (
    "UPDATE carts SET contact_id = ?, status = ?, items = ?::jsonb, item_count = ?, value = ?,"
    " currency = ?, last_activity_at = ?, checkout_started_at = ?, ordered_at = ?,"
    " updated_at = ? WHERE id = ?"
)


def update_stored(session: Session, carts: Sequence[tuple[CartState, datetime]]) -> None:
    """Write stored carts back, each as changed at its time, in one driver call (`db.bulk`):
    a batch of the event pipeline writes thousands, and SQLAlchemy's processing of each row's
    parameters cost more than the update. A cart's workspace, key and creation never change."""
    if not carts:
        return
    values = driver_values(session)
    # The dialect's own processing of the money column, as SQLAlchemy's update applied it: a
    # float on SQLite, the Decimal itself for psycopg.
    dialect = session.get_bind().dialect
    processor = CARTS.c.value.type.dialect_impl(dialect).bind_processor(dialect)
    money: Callable[[Any], Any] = processor or (lambda value: value)

    def time(value: datetime | None) -> Any:
        return None if value is None else values.time(value)

    execute_many(
        session,
        _UPDATE,
        [
            (
                cart.contact_id,
                cart.status,
                values.json(cart.items),
                cart.item_count,
                money(cart.value),
                cart.currency,
                values.time(cart.last_activity_at),
                time(cart.checkout_started_at),
                time(cart.ordered_at),
                values.time(changed_at),
                cart.id,
            )
            for cart, changed_at in carts
        ],
    )


def delete(session: Session, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        session.execute(sa.delete(CARTS).where(CARTS.c.id.in_(ids[start : start + CHUNK])))


def update_by_id(session: Session, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write many changed rows in one executemany; every row gives the same columns."""
    if not rows:
        return
    statement = sa.update(table).where(table.c.id == sa.bindparam("row_id"))
    session.execute(
        statement,
        [{"row_id": row["id"], **{k: v for k, v in row.items() if k != "id"}} for row in rows],
    )
