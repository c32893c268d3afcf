"""Tables of orders, their line items, and carts."""

from __future__ import annotations
