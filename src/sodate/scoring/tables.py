"""The scoring tables as the set-based statements and the bulk writes use them: the columns
that the real-time step and the recomputation both write, whether a model has engagement
resets, and the rows of a model that a recomputation looks at (`Scope`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from sodate.scoring.models import (
    ContactScore,
    ContactScoreRule,
    ScoreCrossing,
    ScoreDailyAward,
    ScoreHistory,
    ScoreReset,
)

SCORES: sa.Table = ContactScore.__table__  # type: ignore[assignment]
RULES: sa.Table = ContactScoreRule.__table__  # type: ignore[assignment]
DAILY: sa.Table = ScoreDailyAward.__table__  # type: ignore[assignment]
HISTORY: sa.Table = ScoreHistory.__table__  # type: ignore[assignment]
CROSSINGS: sa.Table = ScoreCrossing.__table__  # type: ignore[assignment]
RESETS: sa.Table = ScoreReset.__table__  # type: ignore[assignment]
HISTORY_COLUMNS = ("workspace_id", "model_id", "contact_id", "at", "fit", "engagement", "cause")
CROSSING_COLUMNS = (
    "workspace_id",
    "model_id",
    "contact_id",
    "threshold",
    "value",
    "reached",
    "total",
    "cause",
    "at",
)
"""The columns the real-time step and the recomputation write, in their order."""


def has_resets(session: Session, model_id: int) -> bool:
    """Whether some contact's engagement in the model was reset (`score_resets`)."""
    found = session.execute(
        sa.select(RESETS.c.model_id).where(RESETS.c.model_id == model_id).limit(1)
    ).first()
    return found is not None


class Scope:
    """A model's rows: all, or those of `contacts`."""

    def __init__(self, session: Session, model_id: int, contacts: Sequence[int] | None) -> None:
        self.model_id = model_id
        self.contacts = contacts
        self.has_resets = has_resets(session, model_id)
        """Some contact's engagement was reset: events before its reset give no points."""

    def of(self, table: sa.Table) -> list[ColumnElement[bool]]:
        where = [table.c.model_id == self.model_id]
        if self.contacts is not None:
            where.append(table.c.contact_id.in_(self.contacts))
        return where
