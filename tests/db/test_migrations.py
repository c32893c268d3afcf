"""One migration history for both databases: builds the schema from empty, matches the models."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sodate.contacts.models import identity_key
from sodate.db import migrate
from sodate.db.engine import Database, create_db_engine
from sodate.db.metadata import migrated_metadata
from sodate.events.inbox import create_inbox_tables, sqlite_inbox_url
from sodate.events.models import Event, EventDailyCount, message_key


@pytest.fixture
def empty_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('empty') / 'empty.db'}"
        return
    name = f"sodate_empty_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def add_workspace(connection: sa.Connection) -> None:
    """Workspace `w1`, inserted as a migration of any revision has the table."""
    connection.execute(
        sa.text(
            "INSERT INTO workspaces (id, name, timezone, locale, created_at, updated_at)"
            " VALUES ('w1', 'w', 'Asia/Tokyo', 'ja', :at, :at)"
        ),
        {"at": "2026-01-01 00:00:00.000000"},
    )


def add_contact(connection: sa.Connection) -> int:
    """A contact of workspace `w1`, inserted as a migration of any revision has the table."""
    contact_id: int = connection.execute(
        sa.text(
            "INSERT INTO contacts (workspace_id, traits, search_text, sources, created_at,"
            " updated_at) VALUES ('w1', '{}', '', '[]', :at, :at) RETURNING id"
        ),
        {"at": "2026-01-01 00:00:00.000000"},
    ).scalar_one()
    return contact_id


def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        with engine.connect() as connection:
            expected = migrated_metadata(connection.dialect.name)
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), expected
            )
            tables = set(sa.inspect(connection).get_table_names())
        assert differences == []
        assert set(expected.tables) <= tables
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        migrate.upgrade(engine)
        command.downgrade(migrate.alembic_config(engine), "base")
        with engine.connect() as connection:
            assert set(sa.inspect(connection).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_json_written_as_escapes_is_rewritten_as_text(empty_database_url: str) -> None:
    """SQLite's JSON paths match keys by their stored text, so 0006 unescapes old documents."""
    engine = create_db_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0005")
        escaped = json.dumps({"役職": "部長", "nested": {"市": "東京"}})
        assert "\\u" in escaped
        with engine.begin() as connection:
            add_workspace(connection)
            connection.execute(
                sa.text(
                    "INSERT INTO contacts (workspace_id, traits, search_text, sources, created_at,"
                    " updated_at) VALUES ('w1', :traits, '', '[]', '2026-01-01 00:00:00.000000',"
                    " '2026-01-01 00:00:00.000000')"
                ),
                {"traits": escaped},
            )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT CAST(traits AS TEXT) FROM contacts")
            ).scalar_one()
        assert json.loads(stored) == {"役職": "部長", "nested": {"市": "東京"}}
        if engine.dialect.name == "sqlite":
            assert "役職" in stored
    finally:
        engine.dispose()


def test_stored_events_get_the_key_their_message_id_is_looked_up_by(
    empty_database_url: str,
) -> None:
    """0014 computes the keys in SQL on PostgreSQL: they must be the ones the processor looks
    up, or a resent message would be stored twice."""
    engine = create_db_engine(empty_database_url)
    message_ids = ["m-1", "注文-２０２６", "ajs-next-1", "x" * 200]
    try:
        migrate.upgrade(engine, "0013")
        with engine.begin() as connection:
            add_workspace(connection)
            contact_id = add_contact(connection)
            for message_id in message_ids:
                connection.execute(
                    sa.text(
                        "INSERT INTO events (workspace_id, contact_id, message_id, type, name,"
                        " properties, context, timestamp, received_at) VALUES ('w1', :contact,"
                        " :message_id, 'track', 'Signed Up', '{}', '{}', :at, :at)"
                    ),
                    {"contact": contact_id, "message_id": message_id, "at": "2026-01-01 00:00:00"},
                )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT message_id, message_key FROM events"))
            keys: dict[str, int] = {message_id: key for message_id, key in rows}
        assert keys == {message_id: message_key(message_id) for message_id in message_ids}
        assert {key < 0 for key in keys.values()} == {True, False}
    finally:
        engine.dispose()


def test_stored_identities_get_the_key_they_are_looked_up_by(empty_database_url: str) -> None:
    """0028 computes the keys in SQL on PostgreSQL: they must be the ones resolution looks up,
    or a known person would come back as a new contact."""
    engine = create_db_engine(empty_database_url)
    values = [("email", "hanako@example.jp"), ("external:line", "Ｕ１２３"), ("user_id", "x" * 200)]
    try:
        migrate.upgrade(engine, "0027")
        with engine.begin() as connection:
            add_workspace(connection)
            contact_id = add_contact(connection)
            for kind, value in values:
                connection.execute(
                    sa.text(
                        "INSERT INTO contact_identities (workspace_id, kind, value, contact_id,"
                        " created_at) VALUES ('w1', :kind, :value, :contact, :at)"
                    ),
                    {"kind": kind, "value": value, "contact": contact_id, "at": "2026-01-01"},
                )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT kind, value, key FROM contact_identities"))
            keys = {(kind, value): key for kind, value, key in rows}
        assert keys == {(kind, value): identity_key("w1", kind, value) for kind, value in values}
        with engine.begin() as connection:  # a row stored twice, which nothing should do
            connection.execute(
                sa.text(
                    "INSERT INTO contact_identities (workspace_id, kind, value, key, contact_id,"
                    " created_at) SELECT workspace_id, kind, value, key, contact_id, created_at"
                    " FROM contact_identities WHERE kind = 'email'"
                )
            )
        command.downgrade(migrate.alembic_config(engine), "0027")
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT kind, value FROM contact_identities"))
            assert sorted(tuple(row) for row in rows) == sorted(values)
    finally:
        engine.dispose()


def test_event_times_keep_their_instants_as_microseconds_and_back(
    empty_database_url: str,
) -> None:
    """0029 turns SQLite's text times of events and daily counts into integers, and back."""
    engine = create_db_engine(empty_database_url)
    times = [
        "2026-11-24 10:00:00.123456",
        "1969-12-31 23:59:59.500000",
        "2026-01-01 00:00:00.000000",
        "2026-11-24 23:59:59.999999",  # strftime alone would round these to the next second
        "2026-11-24 10:00:00.999500",
    ]
    try:
        migrate.upgrade(engine, "0028")
        zone = "" if engine.dialect.name == "sqlite" else "+00:00"
        with engine.begin() as connection:
            add_workspace(connection)
            contact_id = add_contact(connection)
            for number, at in enumerate(time + zone for time in times):
                connection.execute(
                    sa.text(
                        "INSERT INTO events (workspace_id, contact_id, message_id, message_key,"
                        " type, name, properties, context, timestamp, received_at) VALUES ('w1',"
                        " :contact, :message, :number + 1, 'track', 'Signed Up', '{}', '{}', :at,"
                        " :at)"
                    ),
                    {"contact": contact_id, "message": f"m-{number}", "number": number, "at": at},
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO event_daily_counts (contact_id, name, day, workspace_id,"
                        " count, first_at, last_at) VALUES (:contact, :name, '2026-11-24', 'w1',"
                        " 1, :at, :at)"
                    ),
                    {"contact": contact_id, "name": f"n-{number}", "at": at},
                )
        expected = sorted(datetime.fromisoformat(at).replace(tzinfo=UTC) for at in times)
        migrate.upgrade(engine)
        with engine.connect() as connection:
            events = sorted(connection.execute(sa.select(Event.timestamp, Event.received_at)).all())
            counts = sorted(
                connection.execute(
                    sa.select(EventDailyCount.first_at, EventDailyCount.last_at)
                ).all()
            )
        assert events == [(at, at) for at in expected]
        assert counts == [(at, at) for at in expected]
        command.downgrade(migrate.alembic_config(engine), "0028")
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT timestamp FROM events")).scalars().all()
        if engine.dialect.name == "sqlite":
            assert sorted(stored) == sorted(times)
    finally:
        engine.dispose()


def inbox_schema(url: str) -> tuple[object, ...]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return (
                connection.exec_driver_sql("PRAGMA user_version").scalar_one(),
                connection.exec_driver_sql("PRAGMA auto_vacuum").scalar_one(),
                sorted(  # the statements, whatever their spacing
                    re.sub(r"\s*([(),])\s*", r"\1", " ".join(str(sql).split()))
                    for (sql,) in connection.exec_driver_sql(
                        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"
                    )
                ),
            )
    finally:
        engine.dispose()


def test_waiting_requests_move_with_the_inbox_and_back(
    empty_database_url: str, tmp_path: Path
) -> None:
    """0017 moves SQLite's inbox into its own file; requests waiting then are not lost."""
    engine = create_db_engine(empty_database_url)
    inbox_url = (
        sqlite_inbox_url(empty_database_url)
        if engine.dialect.name == "sqlite"
        else empty_database_url
    )

    def waiting(url: str) -> list[tuple[str, str, int]]:
        reader = create_db_engine(url)
        try:
            with reader.connect() as connection:
                query = "SELECT workspace_id, messages, message_count FROM event_inbox ORDER BY id"
                return [tuple(row) for row in connection.execute(sa.text(query))]
        finally:
            reader.dispose()

    requests = [("w1", '[{"messageId":"m-1"}]', 1), ("w1", '[{"type":"track"},{"x":"注文"}]', 2)]
    try:
        migrate.upgrade(engine, "0016")
        with engine.begin() as connection:
            add_workspace(connection)
            for workspace_id, messages, count in requests:
                connection.execute(
                    sa.text(
                        "INSERT INTO event_inbox (workspace_id, messages, message_count,"
                        " received_at) VALUES (:w, :m, :c, '2026-01-01 00:00:00.000000')"
                    ),
                    {"w": workspace_id, "m": messages, "c": count},
                )
        migrate.upgrade(engine)
        assert waiting(inbox_url) == requests
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                assert "event_inbox" not in sa.inspect(connection).get_table_names()
            # The file the migration made is the one the application makes.
            fresh = Database.from_url(f"sqlite:///{tmp_path / 'fresh-inbox.db'}")
            create_inbox_tables(fresh)
            assert inbox_schema(inbox_url) == inbox_schema(str(fresh.engine.url))
            fresh.dispose()

        command.downgrade(migrate.alembic_config(engine), "0016")
        assert waiting(empty_database_url) == requests
    finally:
        engine.dispose()


def test_rebuilding_a_table_keeps_the_rows_that_reference_it(empty_database_url: str) -> None:
    """0020 rebuilds `orders` on SQLite (a copy, then a drop of the old table); with foreign
    keys on, the drop would take every order's line items with it."""
    engine = create_db_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0019")
        with engine.begin() as connection:
            add_workspace(connection)
            contact_id = add_contact(connection)
            order_id = connection.execute(
                sa.text(
                    "INSERT INTO orders (workspace_id, contact_id, order_key, status, currency,"
                    " total, refunded_amount, placed_at, properties, created_at, updated_at)"
                    " VALUES ('w1', :contact, 'o-1', 'completed', 'JPY', 1200, 0, :at, '{}',"
                    " :at, :at) RETURNING id"
                ),
                {"contact": contact_id, "at": "2026-01-01 00:00:00.000000"},
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO order_items (order_id, name, quantity, properties)"
                    " VALUES (:order, '抹茶', 2, '{}')"
                ),
                {"order": order_id},
            )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            items = connection.execute(sa.text("SELECT order_id, name FROM order_items")).all()
            assert [tuple(item) for item in items] == [(order_id, "抹茶")]
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        command.downgrade(migrate.alembic_config(engine), "0019")
        assert migrate.current_revision(engine) == "0019"
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM order_items")).scalar() == 1
    finally:
        engine.dispose()


def test_stored_addresses_are_width_folded_unless_another_contact_has_the_folded_one(
    empty_database_url: str,
) -> None:
    engine = create_db_engine(empty_database_url)
    at = "2026-01-01 00:00:00.000000"
    try:
        migrate.upgrade(engine, "0021")
        with engine.begin() as connection:
            add_workspace(connection)
            contacts = [add_contact(connection) for _ in range(3)]
            for contact, address in zip(
                contacts,
                ["ｙａｍａｄａ@example.jp", "ｓａｔｏ@example.jp", "sato@example.jp"],
                strict=True,
            ):
                connection.execute(
                    sa.text(
                        "INSERT INTO contact_identities (workspace_id, kind, value, contact_id,"
                        " created_at) VALUES ('w1', 'email', :value, :contact, :at)"
                    ),
                    {"value": address, "contact": contact, "at": at},
                )
                connection.execute(
                    sa.text("UPDATE contacts SET email = :value WHERE id = :contact"),
                    {"value": address, "contact": contact},
                )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            identities = connection.execute(
                sa.text("SELECT contact_id, value FROM contact_identities ORDER BY contact_id")
            ).all()
            emails = connection.execute(sa.text("SELECT id, email FROM contacts ORDER BY id")).all()
        expected = [
            (contacts[0], "yamada@example.jp"),
            (contacts[1], "ｓａｔｏ@example.jp"),  # sato@… is another contact's: left for a merge
            (contacts[2], "sato@example.jp"),
        ]
        assert [tuple(row) for row in identities] == expected
        assert [tuple(row) for row in emails] == expected
    finally:
        engine.dispose()


def test_search_texts_are_made_again_width_folded_and_without_spaces(
    empty_database_url: str,
) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0022")
        with engine.begin() as connection:
            add_workspace(connection)
            connection.execute(
                sa.text(
                    "INSERT INTO contacts (workspace_id, traits, email, search_text, sources,"
                    " created_at, updated_at) VALUES ('w1', :traits, 'hanako@example.jp',"
                    " :old, '[]', :at, :at)"
                ),
                {
                    "traits": json.dumps({"name": "山田　花子", "title": "ＣＥＯ"}),
                    "old": "hanako@example.jp 山田　花子 ｃｅｏ",
                    "at": "2026-01-01 00:00:00.000000",
                },
            )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            found = connection.execute(sa.text("SELECT search_text FROM contacts")).scalar_one()
        assert found == "hanako@example.jp 山田花子 ceo"
    finally:
        engine.dispose()
