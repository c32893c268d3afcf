"""Tables of scoring models, each contact's scores with their reasons, history and crossings.

Engagement decays by half-life. It is kept as a *base*: the sum of each award times
2^((awarded_at − epoch) / half_life), where `epoch` is the model's. The engagement at any
instant t is then base × 2^(−(t − epoch) / half_life), exactly, with no periodic rewrite; and
a condition on the total (fit + base × c ≥ v) stays linear in SQL. Without decay the factor is
1 and the base is the plain sum.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class ScoreCause(StrEnum):
    EVENT = "event"
    """An event gave engagement points."""
    PROFILE = "profile"
    """The contact's attributes (or its company's) changed its fit."""
    MODEL = "model"
    """The model was saved and every contact recomputed."""
    MERGE = "merge"
    TIME = "time"
    """Decay carried the total below a threshold."""
    RESET = "reset"
    """The contact's engagement was set back to 0 (a lead sales sent back to nurturing)."""


class ScoringModel(Base):
    __tablename__ = "scoring_models"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    """The document as saved: `fit`, `engagement`, `decay`, `thresholds`."""
    half_life_days: Mapped[float | None] = mapped_column(sa.Float)
    """The decay's half-life (None: no decay), for SQL that reads scores."""
    epoch: Mapped[datetime]
    """The instant the engagement bases of this model are relative to."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    computed_at: Mapped[datetime | None]


class ContactScore(Base):
    __tablename__ = "contact_scores"
    __table_args__ = (
        sa.Index("ix_contact_scores_contact_id", "contact_id"),
        # SQLite: the table is its primary key's tree, not a rowid's (migration 0026).
        {"sqlite_with_rowid": False},
    )

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("scoring_models.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    fit: Mapped[float] = mapped_column(sa.Float)
    engagement_base: Mapped[float] = mapped_column(sa.Float)
    level: Mapped[int]
    """How many of the model's thresholds the total had reached when last looked at."""
    updated_at: Mapped[datetime]


class ContactScoreRule(Base):
    """What one rule of a model gave one contact: the reasons behind a score."""

    __tablename__ = "contact_score_rules"
    __table_args__ = (
        sa.Index("ix_contact_score_rules_contact_id", "contact_id"),
        {"sqlite_with_rowid": False},
    )

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("scoring_models.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    """`fit.N` or `engagement.N`: the rule's place in the model."""
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    points: Mapped[float] = mapped_column(sa.Float)
    """Points awarded, before decay."""
    base: Mapped[float] = mapped_column(sa.Float)
    """Engagement rules: the decay base of those points (see the module's docstring)."""


class ScoreDailyAward(Base):
    """Points a rule with `max_per_day` gave a contact on one day (the workspace's calendar)."""

    __tablename__ = "score_daily_awards"
    __table_args__ = ({"sqlite_with_rowid": False},)

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("scoring_models.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    points: Mapped[float] = mapped_column(sa.Float)


class ScoreHistory(Base):
    """A contact's score after a change, for charts; between rows the engagement decays."""

    __tablename__ = "score_history"
    __table_args__ = (
        sa.Index("ix_score_history_contact_id_model_id_id", "contact_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("scoring_models.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime]
    fit: Mapped[float] = mapped_column(sa.Float)
    engagement: Mapped[float] = mapped_column(sa.Float)
    cause: Mapped[str] = mapped_column(sa.String(16))


class ScoreCrossing(Base):
    """A contact's total reached a threshold, or fell back below it: a fact journeys trigger on."""

    __tablename__ = "score_crossings"
    __table_args__ = (
        sa.Index("ix_score_crossings_model_id_id", "model_id", "id"),
        sa.Index("ix_score_crossings_contact_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("scoring_models.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(BigId)
    threshold: Mapped[str] = mapped_column(sa.String(100))
    value: Mapped[float] = mapped_column(sa.Float)
    """The threshold's value when it was crossed."""
    reached: Mapped[bool]
    """True when the total rose to the threshold, False when it fell below."""
    total: Mapped[float] = mapped_column(sa.Float)
    cause: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime]


class ScoreReset(Base):
    """The contact's engagement in the model was set back to 0 at `at`: events up to then
    give it no points, in real time and in every recomputation."""

    __tablename__ = "score_resets"

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("scoring_models.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
