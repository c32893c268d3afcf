"""Scores compare with thresholds and condition bounds as they are shown, to a hundredth."""

from __future__ import annotations

import pytest

from sodate.scoring.decay import reached, shown_bound, shown_range


def _holds(op: str, total: float, bound: float) -> bool:
    at_least, edge = shown_bound(op, bound)
    return total >= edge if at_least else total < edge


@pytest.mark.parametrize(
    ("total", "op", "bound", "expected"),
    [
        (59.99999999999999, "gte", 60, True),  # shown as 60.00
        (59.99999999999999, "lt", 60, False),
        (60.00000000000001, "gt", 60, False),
        (60.00000000000001, "lte", 60, True),
        (60.004, "gt", 60, False),  # shown as 60.00
        (60.006, "gt", 60, True),  # shown as 60.01
        # Bounds finer than a hundredth: 59.988 is shown as 59.99.
        (59.988, "gt", 59.985, True),
        (59.988, "lte", 59.985, False),
        (59.988, "gte", 59.985, True),
        (59.982, "gte", 59.985, False),  # shown as 59.98
    ],
)
def test_comparisons_are_of_the_score_as_shown(
    total: float, op: str, bound: float, expected: bool
) -> None:
    assert _holds(op, total, bound) is expected


def test_thresholds_and_ranges_as_shown() -> None:
    assert reached(59.99999999999999, 60)
    assert not reached(60.0, 60.004)  # shown as 60.00, below 60.004
    assert reached(60.006, 60.004)
    low, high = shown_range(60, 70)
    assert [low <= v < high for v in (59.996, 59.994, 70.004, 70.006)] == [
        True,
        False,
        True,
        False,
    ]
