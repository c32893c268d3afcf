"""Which event filters have kept latest times (`sodate.conditions.filtered`), and which counts
their rows answer: read by both evaluators' loaders, the set-based one and the real-time one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import terms
from sodate.conditions.models import EventFilter
from sodate.conditions.reads import reads_zone
from sodate.conditions.schemas import EventSpec, PropFilter
from sodate.events.models import LATEST_KEPT

FILTERS: sa.Table = EventFilter.__table__  # type: ignore[assignment]


def filter_digest(name: str, where: Sequence[PropFilter]) -> str:
    """What identifies the events of a name that a list of filters selects."""
    # Filters are all met, in any order: the same ones listed in another order are one filter.
    text = "\x00".join([name, *sorted(item.model_dump_json() for item in where)])
    return sha256(text.encode()).hexdigest()


def keeps(spec: EventSpec, ceiling: int) -> bool:
    """Whether kept times can answer a count of the spec that needs `ceiling` events counted:
    it has filters, and they read neither the clock nor a time zone. (A count that needs none
    counted, `gte 0`, reads no rows.)"""
    return bool(spec.where) and 1 <= ceiling <= LATEST_KEPT and not any(map(reads_zone, spec.where))


@dataclass(frozen=True)
class TrackedFilter:
    id: int
    since: datetime | None

    def answers(self, spec: EventSpec, now: datetime) -> bool:
        """Whether its rows hold every event a count of the spec reads at `now`."""
        if self.since is None:
            return True
        return spec.within is not None and (
            now - terms.parse_positive_duration(spec.within) >= self.since
        )


def answering(
    kept: Mapping[str, TrackedFilter], spec: EventSpec, ceiling: int, now: datetime
) -> TrackedFilter | None:
    """The kept filter whose rows answer a count of the spec at `now` that needs `ceiling`
    events counted, if there is one."""
    if not keeps(spec, ceiling):
        return None
    found = kept.get(filter_digest(spec.name, spec.where))
    return found if found is not None and found.answers(spec, now) else None


def tracked_filters(session: Session, workspace_id: str) -> dict[str, TrackedFilter]:
    """The workspace's kept filters, by digest."""
    rows = session.execute(
        sa.select(FILTERS.c.digest, FILTERS.c.id, FILTERS.c.since).where(
            FILTERS.c.workspace_id == workspace_id
        )
    )
    return {digest: TrackedFilter(id, since) for digest, id, since in rows}
