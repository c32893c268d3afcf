"""Orders and carts: listing and showing them. They are written by the event pipeline only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.commerce.models import OPEN_CART_STATUSES, Cart, CartStatus, Order, OrderItem
from sodate.commerce.schemas import (
    CartItemOut,
    CartOut,
    CartPage,
    OrderDetail,
    OrderItemOut,
    OrderOut,
    OrderPage,
)
from sodate.contacts import service as contacts
from sodate.db.paging import fetch_page
from sodate.errors import NotFound
from sodate.workspaces import service as workspaces


@dataclass(frozen=True)
class OrderFilter:
    contact_id: int | None = None
    statuses: tuple[str, ...] = ()
    placed_after: datetime | None = None
    placed_before: datetime | None = None
    order_key: str | None = None


@dataclass(frozen=True)
class CartFilter:
    contact_id: int | None = None
    statuses: tuple[str, ...] = ()
    idle_since: datetime | None = None
    """Open carts with items and no activity since then: the abandoned ones. Times here, as in
    `OrderFilter`, are read as the query gives them: without an offset, the workspace's."""
    cart_key: str | None = None


def _instant(session: Session, workspace_id: str, value: datetime, parameter: str) -> datetime:
    """A filter's time as given in the query: without an offset, the workspace's."""
    return workspaces.workspace_instant(session, workspace_id, value, parameter=parameter)


def list_orders(
    session: Session, workspace_id: str, where: OrderFilter, *, limit: int, before: int | None
) -> OrderPage:
    """Orders, newest first; `before` is the cursor of the previous page."""
    statement = sa.select(Order).where(Order.workspace_id == workspace_id)
    if where.contact_id is not None:
        # A merged contact's orders moved to the contact it was merged into.
        live = contacts.live_contact_id(session, workspace_id, where.contact_id)
        statement = statement.where(Order.contact_id == live)
    if where.statuses:
        statement = statement.where(Order.status.in_(where.statuses))
    if where.placed_after is not None:
        after = _instant(session, workspace_id, where.placed_after, "placed_after")
        statement = statement.where(Order.placed_at >= after)
    if where.placed_before is not None:
        before_time = _instant(session, workspace_id, where.placed_before, "placed_before")
        statement = statement.where(Order.placed_at < before_time)
    if where.order_key is not None:
        statement = statement.where(Order.order_key == where.order_key)
    if before is not None:
        statement = statement.where(Order.id < before)
    rows, next_cursor = fetch_page(session, statement.order_by(Order.id.desc()), limit=limit)
    return OrderPage(items=[_order_out(order) for order in rows], next_cursor=next_cursor)


def get_order(session: Session, workspace_id: str, order_id: int) -> OrderDetail:
    order = session.get(Order, order_id)
    if order is None or order.workspace_id != workspace_id:
        raise NotFound(f"no order {order_id}")
    items = session.execute(
        sa.select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
    ).scalars()
    return OrderDetail(
        **_order_out(order).model_dump(),
        items=[OrderItemOut.model_validate(item, from_attributes=True) for item in items],
    )


def list_carts(
    session: Session, workspace_id: str, where: CartFilter, *, limit: int, before: int | None
) -> CartPage:
    """Carts, newest first; `before` is the cursor of the previous page."""
    statement = sa.select(Cart).where(Cart.workspace_id == workspace_id)
    if where.contact_id is not None:
        live = contacts.live_contact_id(session, workspace_id, where.contact_id)
        statement = statement.where(Cart.contact_id == live)
    if where.statuses:
        statement = statement.where(Cart.status.in_(where.statuses))
    if where.idle_since is not None:
        # Served by the index on (workspace, status, last activity).
        statement = statement.where(
            Cart.status.in_(OPEN_CART_STATUSES),
            Cart.last_activity_at < _instant(session, workspace_id, where.idle_since, "idle_since"),
            Cart.item_count > 0,
        )
    if where.cart_key is not None:
        statement = statement.where(Cart.cart_key == where.cart_key)
    if before is not None:
        statement = statement.where(Cart.id < before)
    rows, next_cursor = fetch_page(session, statement.order_by(Cart.id.desc()), limit=limit)
    return CartPage(items=[_cart_out(cart) for cart in rows], next_cursor=next_cursor)


def get_cart(session: Session, workspace_id: str, cart_id: int) -> CartOut:
    cart = session.get(Cart, cart_id)
    if cart is None or cart.workspace_id != workspace_id:
        raise NotFound(f"no cart {cart_id}")
    return _cart_out(cart)


def _order_out(order: Order) -> OrderOut:
    return OrderOut.model_validate(order, from_attributes=True)


def _cart_out(cart: Cart) -> CartOut:
    return CartOut(
        id=cart.id,
        contact_id=cart.contact_id,
        cart_key=cart.cart_key,
        status=CartStatus(cart.status),
        currency=cart.currency,
        value=cart.value,
        item_count=cart.item_count,
        items=[CartItemOut.model_validate(line) for line in cart.items],
        last_activity_at=cart.last_activity_at,
        checkout_started_at=cart.checkout_started_at,
        ordered_at=cart.ordered_at,
        created_at=cart.created_at,
        updated_at=cart.updated_at,
    )
