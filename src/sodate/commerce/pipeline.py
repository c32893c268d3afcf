"""The commerce steps of the event pipeline, and what a contact merge moves."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from sodate.contacts.resolution import PlannedMerge
from sodate.events.pipeline import EventBatch


def apply_commerce(session: Session, batch: EventBatch) -> None:
    """Maintain orders and carts from the batch's ecommerce events."""


def move_orders(session: Session, workspace_id: str, merges: Sequence[PlannedMerge]) -> None:
    """Give the surviving contact of each merge the orders and carts of the merged one."""
