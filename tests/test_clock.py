from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sodate.clock import ClockError, ManualClock, SystemClock, parse_duration, parse_instant
from sodate.runtime import Runtime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", timedelta(days=3)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        ("1w", timedelta(weeks=1)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 1d 2h ", timedelta(days=1, hours=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "3", "3x", "d3", "3d-", "-3d", "3d junk"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ClockError):
        parse_duration(text)


def test_parse_instant_needs_an_offset() -> None:
    assert parse_instant("2026-04-01T09:00:00+09:00") == datetime(2026, 4, 1, tzinfo=UTC)
    with pytest.raises(ClockError, match="offset"):
        parse_instant("2026-04-01T09:00:00")


def test_system_clock_is_aware() -> None:
    assert SystemClock().now().tzinfo is not None


def test_manual_clock_stands_still_and_is_shared(runtime: Runtime) -> None:
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    start = clock.now()
    assert start == datetime(2026, 4, 1, tzinfo=UTC)
    assert clock.now() == start
    other_process_view = ManualClock(runtime.db)
    assert clock.advance(timedelta(days=3)) == start + timedelta(days=3)
    assert other_process_view.now() == start + timedelta(days=3)


def test_manual_clock_only_moves_forward(runtime: Runtime) -> None:
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    now = clock.now()
    with pytest.raises(ClockError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ClockError):
        clock.set(now - timedelta(days=1))
    assert clock.now() == now
