"""The arithmetic of decay, in Python and in SQL, so every reader of a score computes it alike.

Engagement is stored as a base relative to the model's epoch (see `sodate.scoring.models`):
an award of `a` points at `t` adds a × 2^((t − epoch) / h) to the base, and the engagement at
`now` is base × 2^(−(now − epoch) / h), h being the half-life (no decay: both factors are 1).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from sodate.db.base import MicrosecondTime, UTCDateTime

SECONDS_A_DAY = 86_400.0
EXPONENT_BOUND = 1000.0
"""Exponents are clamped to ±1000 so 2^x stays a finite, non-zero double; the score sweep
moves a model's epoch forward long before real awards come near it."""


HALF_SHOWN = 0.005
"""Half the hundredth of a point scores are shown to (`live.rounded`). Scores are compared with
thresholds and condition bounds as shown: a total shown as 60.00 has reached 60, though
decay's arithmetic may leave it at 59.99999999999999. So a comparison tests the score against
the edge between two hundredths, which also keeps it off the whole numbers totals land on
exactly, where the Python and SQL arithmetic could disagree."""

MAX_BOUND = 10**12
"""The largest threshold, in absolute value, a model may name. The edge between two
hundredths is found in `bound × 100`, whose hundredths are exact below 2^53 (about 9e15); no
real score comes near the bound (a rule gives at most a million points)."""

MAX_COMPARED = 1e306
"""The largest number, in absolute value, a score condition compares with: beyond it
`bound × 100` is infinite (1e308 overflowed, HTTP 500). Conditions were saved with any
finite bound before bounds were checked, and every such condition must still load, so the
bound is where the arithmetic fails, not where its hundredths stop being exact."""


def _hundredths_up(bound: float) -> float:
    return math.ceil(round(bound * 100, 6)) / 100


def _hundredths_down(bound: float) -> float:
    return math.floor(round(bound * 100, 6)) / 100


def threshold_bound(threshold: float) -> float:
    """The least score that, as shown, has reached `threshold`."""
    return _hundredths_up(threshold) - HALF_SHOWN


def reached(total: float, threshold: float) -> bool:
    """Whether a score, as shown, has reached `threshold`."""
    return total >= threshold_bound(threshold)


def shown_bound(op: str, bound: float) -> tuple[bool, float]:
    """A comparison of a score with `bound` as shown (`gt`, `gte`, `lt` or `lte`), as a test of
    the score itself: (True, b) for "at least b", (False, b) for "less than b"."""
    if op in ("gte", "lt"):
        return op == "gte", threshold_bound(bound)
    return op == "gt", _hundredths_down(bound) + HALF_SHOWN


def shown_range(low: float, high: float) -> tuple[float, float]:
    """`between [low, high]` as shown: the score is at least the first and less than the
    second."""
    return threshold_bound(low), _hundredths_down(high) + HALF_SHOWN


def decay_weight(at: datetime, epoch: datetime, half_life_seconds: float | None) -> float:
    """What an award at `at` weighs in the base: 2^((at − epoch) / h)."""
    if half_life_seconds is None:
        return 1.0
    exponent = (at - epoch).total_seconds() / half_life_seconds
    return float(2.0 ** max(-EXPONENT_BOUND, min(EXPONENT_BOUND, exponent)))


def decay_factor(now: datetime, epoch: datetime, half_life_seconds: float | None) -> float:
    """What the base is multiplied by to give the engagement at `now`: 2^(−(now − epoch) / h)."""
    if half_life_seconds is None:
        return 1.0
    exponent = -(now - epoch).total_seconds() / half_life_seconds
    return float(2.0 ** max(-EXPONENT_BOUND, min(EXPONENT_BOUND, exponent)))


def weight_sql(
    at: Any, epoch: Any, half_life_days: Any, postgresql: bool, *, sign: float = 1.0
) -> ColumnElement[float]:
    """2^(sign × (at − epoch) / h) in SQL; `at`, `epoch` times (columns or values), h in days
    (a column, or a number); None for h means no decay."""
    at, epoch = (
        sa.literal(value, UTCDateTime()) if isinstance(value, datetime) else value
        for value in (at, epoch)
    )
    if postgresql:
        days = sa.func.extract("epoch", at - epoch) / SECONDS_A_DAY
        exponent = sa.func.greatest(
            -EXPONENT_BOUND, sa.func.least(EXPONENT_BOUND, sign * days / half_life_days)
        )
        power = sa.func.power(sa.cast(2.0, sa.Float), sa.cast(exponent, sa.Float))
    else:
        days = _julian_day(at) - _julian_day(epoch)
        exponent = sa.func.max(
            -EXPONENT_BOUND, sa.func.min(EXPONENT_BOUND, sign * days / half_life_days)
        )
        power = sa.func.pow(2.0, exponent)
    if isinstance(half_life_days, int | float):
        return power
    return sa.case((half_life_days.is_(None), 1.0), else_=power)


def decay_factor_sql(
    now: datetime, epoch: Any, half_life_days: Any, postgresql: bool
) -> ColumnElement[float]:
    return weight_sql(now, epoch, half_life_days, postgresql, sign=-1.0)


def _julian_day(value: Any) -> ColumnElement[Any]:
    """SQLite's Julian day of a time column or value; a `MicrosecondTime` column holds an
    integer of microseconds there (an event's time)."""
    if isinstance(getattr(value, "type", None), MicrosecondTime):
        seconds = sa.type_coerce(value, sa.BigInteger()) / 1_000_000.0
        return sa.func.julianday(seconds, "unixepoch")
    return sa.func.julianday(value)
