"""HTTP routes of orders and carts. Handlers only delegate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sodate.commerce import service
from sodate.commerce.models import CartStatus, OrderStatus
from sodate.commerce.schemas import CartOut, CartPage, OrderDetail, OrderPage
from sodate.commerce.service import CartFilter, OrderFilter
from sodate.deps import Caller, allowed
from sodate.workspaces.roles import Permission
from sodate.workspaces.schemas import TIME_PARAMETER_HELP, TimeParameter

router = APIRouter(prefix="/api/v1")

RowId = Annotated[int, Path(ge=1, le=2**62)]
ContactFilterId = Annotated[
    int | None, Query(ge=1, le=2**62, description="A merged contact's id finds the survivor's")
]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]
Instant = Annotated[TimeParameter | None, Query(description=TIME_PARAMETER_HELP)]


@router.get("/orders", response_model=OrderPage, tags=["orders"])
def list_orders(
    caller: Caller = Depends(allowed(Permission.READ)),
    contact_id: ContactFilterId = None,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    placed_after: Instant = None,
    placed_before: Instant = None,
    order_key: Annotated[
        str | None, Query(min_length=1, max_length=200, description="The shop's order_id")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OrderPage:
    """Orders, newest first. `status` may repeat; `placed_after` includes, `placed_before` not."""
    where = OrderFilter(
        contact_id=contact_id,
        statuses=tuple(status or ()),
        placed_after=placed_after,
        placed_before=placed_before,
        order_key=order_key,
    )
    with caller.runtime.db.read() as session:
        return service.list_orders(session, caller.workspace_id, where, limit=limit, before=cursor)


@router.get("/orders/{order_id}", response_model=OrderDetail, tags=["orders"])
def get_order(order_id: RowId, caller: Caller = Depends(allowed(Permission.READ))) -> OrderDetail:
    """An order with its line items."""
    with caller.runtime.db.read() as session:
        return service.get_order(session, caller.workspace_id, order_id)


@router.get("/carts", response_model=CartPage, tags=["carts"])
def list_carts(
    caller: Caller = Depends(allowed(Permission.READ)),
    contact_id: ContactFilterId = None,
    status: Annotated[list[CartStatus] | None, Query()] = None,
    idle_since: Annotated[
        TimeParameter | None,
        Query(description=f"Open carts with items, idle since then. {TIME_PARAMETER_HELP}"),
    ] = None,
    cart_key: Annotated[
        str | None, Query(min_length=1, max_length=200, description="The shop's cart_id")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CartPage:
    """Carts, newest first. `status` may repeat; `idle_since` finds abandoned carts."""
    where = CartFilter(
        contact_id=contact_id,
        statuses=tuple(status or ()),
        idle_since=idle_since,
        cart_key=cart_key,
    )
    with caller.runtime.db.read() as session:
        return service.list_carts(session, caller.workspace_id, where, limit=limit, before=cursor)


@router.get("/carts/{cart_id}", response_model=CartOut, tags=["carts"])
def get_cart(cart_id: RowId, caller: Caller = Depends(allowed(Permission.READ))) -> CartOut:
    with caller.runtime.db.read() as session:
        return service.get_cart(session, caller.workspace_id, cart_id)
