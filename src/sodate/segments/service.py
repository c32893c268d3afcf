"""Segment operations. Functions take the session, flush and never commit."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.schemas import Condition
from sodate.conditions.sql import matching_contacts
from sodate.contacts import service as contacts
from sodate.segments.schemas import PreviewOut
from sodate.workspaces import service as workspaces


def preview(
    session: Session, workspace_id: str, condition: Condition, *, sample: int, now: datetime
) -> PreviewOut:
    """How many of the workspace's contacts satisfy `condition` at `now`, and the first few."""
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id).timezone)
    matching = matching_contacts(
        condition,
        dialect=session.get_bind().dialect.name,
        workspace_id=workspace_id,
        now=now,
        zone=zone,
    ).subquery()
    count = session.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one()
    ids = (
        session.execute(sa.select(matching.c.id).order_by(matching.c.id).limit(sample))
        .scalars()
        .all()
        if sample
        else []
    )
    return PreviewOut(count=count, sample=contacts.contacts_by_ids(session, workspace_id, ids))
