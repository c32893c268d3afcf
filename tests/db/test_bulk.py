"""Driver values: times as SQLite stores them, the same for every way of writing an instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from sodate.db.base import epoch_micros, floor_seconds, micros_of_text
from sodate.db.bulk import DriverValues, upsert_many
from sodate.runtime import Runtime

ZONES = st.sampled_from([UTC, ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")])
# Hypothesis takes naive bounds; `timezones` makes the times aware.
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=ZONES,
)


@given(st.lists(INSTANTS, min_size=1, max_size=6))
def test_a_time_is_written_as_its_utc_text_whatever_came_before(times: list[datetime]) -> None:
    # One DriverValues serves a whole batch and keeps the times it wrote.
    values = DriverValues("sqlite")
    for moment in [*times, *reversed(times)]:
        expected = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        assert values.time(moment) == expected


def test_equal_instants_in_other_zones_share_a_text_and_the_next_moment_does_not() -> None:
    values = DriverValues("sqlite")
    moment = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert values.time(moment) == "2026-11-23 00:00:00.000000"
    assert values.time(moment.astimezone(UTC)) == "2026-11-23 00:00:00.000000"
    assert values.time(moment + timedelta(microseconds=1)) == "2026-11-23 00:00:00.000001"
    assert DriverValues("postgresql").time(moment) is moment


def test_the_two_times_of_a_repeated_hour_are_an_hour_apart() -> None:
    # 2026-11-01 01:30 happens twice in New York; the two compare equal, as one zone's do.
    values = DriverValues("sqlite")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second
    assert values.time(first) == "2026-11-01 05:30:00.000000"
    assert values.time(second) == "2026-11-01 06:30:00.000000"
    assert values.time(first) == "2026-11-01 05:30:00.000000"


PAST_AND_FUTURE = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(st.one_of(PAST_AND_FUTURE, st.just(datetime(2026, 11, 24, 23, 59, 59, 999_600, UTC))))
def test_sqlite_reads_a_text_time_as_its_microseconds_and_their_day(moment: datetime) -> None:
    """`micros_of_text` and `floor_seconds`, what SQL on SQLite compares event times with and
    counts their days by: exact to the microsecond, before 1970 too."""
    engine = sa.create_engine("sqlite://")
    text = sa.literal(DriverValues("sqlite").time(moment), sa.String())
    micros = sa.literal(epoch_micros(moment), sa.BigInteger())
    with engine.connect() as connection:
        found, day = connection.execute(
            sa.select(micros_of_text(text), sa.func.date(floor_seconds(micros), "unixepoch"))
        ).one()
    assert found == epoch_micros(moment)
    assert day == moment.date().isoformat()


def test_upsert_many_inserts_new_rows_and_updates_those_in_conflict(runtime: Runtime) -> None:
    # The scoring step's rule rows: points add up on a conflict. PostgreSQL runs the rows as
    # arrays through `unnest`, SQLite as an executemany; both must come to the same table.
    statement = (
        "INSERT INTO upserted (owner, rule, day, points, at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (owner, rule) DO UPDATE SET points = upserted.points + excluded.points,"
        " at = excluded.at"
    )
    types = ("bigint", "text", "date", "float8", "timestamptz")
    values = DriverValues(runtime.db.engine.dialect.name)
    day = date(2026, 11, 25)
    stored_day: object = day if values.postgresql else day.isoformat()
    first, later = (values.time(datetime(2026, 11, 25, 9, hour, tzinfo=UTC)) for hour in (0, 30))
    with runtime.db.transaction() as session:
        session.execute(
            sa.text(
                "CREATE TEMPORARY TABLE upserted (owner BIGINT, rule TEXT, day DATE,"
                " points FLOAT, at TIMESTAMP WITH TIME ZONE, PRIMARY KEY (owner, rule))"
            )
        )
        upsert_many(
            session,
            statement,
            [(1, "fit.0", stored_day, 2.5, first), (2, "佐藤", stored_day, 1.0, first)],
            types=types,
        )
        upsert_many(
            session,
            statement,
            [(1, "fit.0", stored_day, 0.5, later), (3, "fit.0", stored_day, None, later)],
            types=types,
        )
        upsert_many(session, statement, [], types=types)
        rows = session.execute(
            sa.text("SELECT owner, rule, points, at FROM upserted ORDER BY owner")
        ).all()
    assert [(owner, rule, points) for owner, rule, points, _at in rows] == [
        (1, "fit.0", 3.0),
        (2, "佐藤", 1.0),
        (3, "fit.0", None),
    ]
    assert [values.stored_time(at) for *_, at in rows] == [
        datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
    ]
