"""The commerce steps of the event pipeline, and what a contact merge moves.

A batch's ecommerce events are applied set-based: the orders and carts they touch are loaded
in a few queries, every event is applied in order in memory, and the results are written
with one executemany per table. The batch's transaction makes the whole step all-or-nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.commerce import carts, orders, spec
from sodate.commerce.carts import CARTS, CHUNK, CartState
from sodate.commerce.models import OPEN_CART_STATUSES
from sodate.commerce.orders import ORDERS, OrderState
from sodate.commerce.spec import CART_EVENTS, ORDER_EVENTS, Ecommerce
from sodate.contacts.resolution import PlannedMerge
from sodate.db.plans import workspace_check
from sodate.events.pipeline import BatchEvent, EventBatch
from sodate.events.schemas import MessageType

_NAMES = frozenset(Ecommerce)


class CartBook:
    """The batch's carts, by cart key and by contact."""

    def __init__(self, loaded: Sequence[CartState]) -> None:
        self.carts = list(loaded)
        self.by_key = {cart.cart_key: cart for cart in loaded if cart.cart_key is not None}
        self.of_contact: dict[int, list[CartState]] = defaultdict(list)
        for cart in loaded:
            self.of_contact[cart.contact_id].append(cart)

    def open_carts(self, contact_id: int) -> list[CartState]:
        return [cart for cart in self.of_contact[contact_id] if cart.is_open]

    def cart_for(
        self, contact_id: int, key: str | None, at: datetime, *, create: bool
    ) -> CartState | None:
        """The cart an event is about: the one its cart_id names, else the contact's latest.

        A cart id names one cart in the workspace; if another contact uses it, the cart
        follows whoever is shopping with it now.
        """
        if key is None:
            current = max(
                self.open_carts(contact_id), key=lambda cart: cart.last_activity_at, default=None
            )
            return current or (self._new(contact_id, None, at) if create else None)
        cart = self.by_key.get(key)
        if cart is None:
            return self._new(contact_id, key, at) if create else None
        if not cart.is_open:
            if not create:
                return None
            cart.reopen()
        if cart.contact_id != contact_id:
            self.of_contact[cart.contact_id].remove(cart)
            self.of_contact[contact_id].append(cart)
            cart.contact_id = contact_id
        return cart

    def _new(self, contact_id: int, key: str | None, at: datetime) -> CartState:
        cart = CartState(contact_id=contact_id, cart_key=key, last_activity_at=at)
        self.carts.append(cart)
        self.of_contact[contact_id].append(cart)
        if key is not None:
            self.by_key[key] = cart
        return cart


def apply_commerce(session: Session, batch: EventBatch) -> None:
    """Maintain orders and carts from the batch's ecommerce events."""
    relevant = [
        (event, Ecommerce(event.name))
        for event in batch.events
        if event.type == MessageType.TRACK and event.name in _NAMES
    ]
    if not relevant:
        return
    order_keys = {_order_key(event, kind) for event, kind in relevant if kind in ORDER_EVENTS}
    cart_keys = {_cart_key(event) for event, _kind in relevant}
    # Events without a cart id, and completed orders, act on the contact's open carts.
    contacts = {
        event.contact_id
        for event, kind in relevant
        if kind == Ecommerce.ORDER_COMPLETED or (kind in CART_EVENTS and not _cart_key(event))
    }
    known = orders.load(session, batch.workspace_id, sorted(k for k in order_keys if k))
    book = CartBook(
        carts.load(
            session,
            batch.workspace_id,
            keys=sorted(k for k in cart_keys if k),
            open_of=sorted(contacts),
        )
    )
    for event, kind in relevant:
        if kind in ORDER_EVENTS:
            _apply_order(known, book, event, kind)
        else:
            _apply_cart(book, event, kind)
    orders.save(session, batch.workspace_id, known.values(), now=batch.now)
    carts.save(session, batch.workspace_id, book.carts, now=batch.now)


def _order_key(event: BatchEvent, kind: Ecommerce) -> str | None:
    """The shop's order id; a completed order without one is known by its message id alone."""
    key = spec.text(event.properties.get("order_id"))
    if key is None and kind == Ecommerce.ORDER_COMPLETED:
        return event.message_id
    return key


def _cart_key(event: BatchEvent) -> str | None:
    return spec.text(event.properties.get("cart_id"))


def _apply_order(
    known: dict[str, OrderState], book: CartBook, event: BatchEvent, kind: Ecommerce
) -> None:
    key = _order_key(event, kind)
    if key is None:
        return
    properties, at = event.properties, event.timestamp
    order = known.get(key)
    if order is None:
        # An order first heard of through any of its events is recorded from what it says.
        order = known[key] = OrderState(contact_id=event.contact_id, order_key=key, placed_at=at)
        order.describe(properties, complete=True)
    elif kind == Ecommerce.ORDER_COMPLETED:
        order.complete(properties, at)
    elif kind == Ecommerce.ORDER_UPDATED:
        order.describe(properties, complete=False)
    if kind == Ecommerce.ORDER_REFUNDED:
        order.refund(properties)
    elif kind == Ecommerce.ORDER_CANCELLED:
        order.cancel()
    elif kind == Ecommerce.ORDER_COMPLETED:
        # Every open cart of the buyer closes: a reminder about any of them would be wrong now.
        named = book.cart_for(event.contact_id, _cart_key(event), at, create=False)
        for cart in {*book.open_carts(event.contact_id), *([named] if named else [])}:
            cart.close(at)


def _apply_cart(book: CartBook, event: BatchEvent, kind: Ecommerce) -> None:
    properties, at = event.properties, event.timestamp
    key = _cart_key(event)
    if kind in (Ecommerce.PRODUCT_ADDED, Ecommerce.PRODUCT_REMOVED):
        product = spec.product(properties)
        if product is None:
            return
        adding = kind == Ecommerce.PRODUCT_ADDED
        cart = book.cart_for(event.contact_id, key, at, create=adding)
        if cart is None:
            return
        if adding:
            cart.add(product)
        else:
            cart.remove(product, spec.quantity(properties.get("quantity")))
    else:
        listed = spec.products(properties)
        cart = book.cart_for(event.contact_id, key, at, create=bool(listed))
        if cart is None:
            return
        # Cart Viewed and Checkout Started list the whole cart: they set it.
        if listed is not None:
            cart.replace(listed)
        if kind == Ecommerce.CHECKOUT_STARTED:
            cart.start_checkout(at)
    cart.touch(at, spec.currency(properties.get("currency")))


def move_orders(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """Give the surviving contact of each merge the orders and carts of the merged one.

    If both had an open cart without a cart id, the two become one (`CartState.absorb`).
    """
    redirect = {merge.merged: merge.survivor for merge in merges}
    if not redirect:
        return
    survivor_of = {merged: _final(redirect, merged) for merged in redirect}
    merged_ids = sorted(survivor_of)
    for table in (ORDERS, CARTS):
        for start in range(0, len(merged_ids), CHUNK):
            chunk = {m: survivor_of[m] for m in merged_ids[start : start + CHUNK]}
            session.execute(
                sa.update(table)
                .where(
                    workspace_check(table.c.workspace_id, workspace_id),
                    table.c.contact_id.in_(chunk),
                )
                .values(contact_id=sa.case(chunk, value=table.c.contact_id))
            )
    _join_keyless_carts(session, workspace_id, sorted(set(survivor_of.values())))


def _final(redirect: dict[int, int], contact_id: int) -> int:
    while contact_id in redirect:
        contact_id = redirect[contact_id]
    return contact_id


def _join_keyless_carts(session: Session, workspace_id: str, survivors: Sequence[int]) -> None:
    by_contact: dict[int, list[CartState]] = defaultdict(list)
    for start in range(0, len(survivors), CHUNK):
        rows = session.execute(
            sa.select(CARTS).where(
                workspace_check(CARTS.c.workspace_id, workspace_id),
                CARTS.c.contact_id.in_(survivors[start : start + CHUNK]),
                CARTS.c.cart_key.is_(None),
                CARTS.c.status.in_(OPEN_CART_STATUSES),
            )
        ).mappings()
        for row in rows:
            by_contact[row["contact_id"]].append(CartState.from_row(row))
    joined: list[tuple[CartState, datetime]] = []
    gone: list[int] = []
    for found in by_contact.values():
        if len(found) < 2:
            continue
        found.sort(key=lambda cart: (cart.last_activity_at, cart.id or 0))
        keeper = found.pop()
        for other in found:
            keeper.absorb(other)
        gone.extend(other.id for other in found if other.id is not None)
        # A merge step is given no clock: the joined cart was last changed when either was.
        changed_at = max(cart.updated_at for cart in (keeper, *found) if cart.updated_at)
        joined.append((keeper, changed_at))
    carts.delete(session, gone)
    carts.update_stored(session, joined)
