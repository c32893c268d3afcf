"""the tracking inbox: on SQLite a file of its own; its index holds the message counts

On SQLite the inbox moves out of the database into the file beside it that
`sodate.events.inbox` opens, so that accepting requests no longer waits for the event
processor's transactions; the waiting requests move with it. On PostgreSQL the table stays and
loses its foreign key to the workspaces, which the SQLite file cannot have.

Both keep the message count in the index on (workspace, id): choosing a batch reads the counts
of the waiting requests, and in the table the count comes after the request's messages, which
SQLite keeps in overflow pages, so each count read the request's whole chain of pages.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base
from sodate.db.engine import Database
from sodate.events.inbox import sqlite_inbox_url

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

WAITING = "SELECT workspace_id, messages, message_count, received_at FROM event_inbox ORDER BY id"
ADD = (
    "INSERT INTO event_inbox (workspace_id, messages, message_count, received_at)"
    " VALUES (:workspace_id, :messages, :message_count, :received_at)"
)
FOREIGN_KEY = "fk_event_inbox_workspace_id_workspaces"
# The inbox file at its schema version 1 (`sodate.events.inbox`), as this migration made it:
# a migration keeps its own copy of what it builds.
INBOX_FILE_VERSION_1 = (
    "PRAGMA auto_vacuum = INCREMENTAL",
    "VACUUM",
    "CREATE TABLE IF NOT EXISTS event_inbox ("
    " id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,"
    " workspace_id VARCHAR(32) NOT NULL,"
    " messages TEXT NOT NULL,"
    " message_count INTEGER NOT NULL,"
    " received_at DATETIME NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_event_inbox_workspace_id_id_count"
    " ON event_inbox (workspace_id, id, message_count)",
    "PRAGMA user_version = 1",
)


def _inbox_file() -> Database:
    main = op.get_bind().execute(sa.text("PRAGMA database_list")).fetchone()
    assert main is not None
    file = sa.engine.URL.create("sqlite", database=main[2])
    inbox = Database.from_url(sqlite_inbox_url(file.render_as_string()))
    connection = inbox.engine.raw_connection()
    try:
        driver = connection.driver_connection
        assert driver is not None
        if driver.execute("PRAGMA user_version").fetchone()[0] == 0:
            driver.executescript(";".join(INBOX_FILE_VERSION_1))
    finally:
        connection.close()
    return inbox


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FOREIGN_KEY, "event_inbox", type_="foreignkey")
        op.create_index(
            "ix_event_inbox_workspace_id_id_count",
            "event_inbox",
            ["workspace_id", "id", "message_count"],
        )
        op.drop_index("ix_event_inbox_workspace_id_id", table_name="event_inbox")
        return
    waiting = op.get_bind().execute(sa.text(WAITING))
    rows = [row._asdict() for row in waiting]
    if rows:
        inbox = _inbox_file()
        try:
            with inbox.engine.begin() as connection:
                connection.execute(
                    sa.text(ADD),
                    rows,
                )
        finally:
            inbox.dispose()
    op.drop_index("ix_event_inbox_workspace_id_id", table_name="event_inbox")
    op.drop_table("event_inbox")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_event_inbox_workspace_id_id", "event_inbox", ["workspace_id", "id"])
        op.drop_index("ix_event_inbox_workspace_id_id_count", table_name="event_inbox")
        op.create_foreign_key(
            FOREIGN_KEY, "event_inbox", "workspaces", ["workspace_id"], ["id"], ondelete="CASCADE"
        )
        return
    op.create_table(
        "event_inbox",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("received_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f(FOREIGN_KEY), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_inbox")),
    )
    op.create_index("ix_event_inbox_workspace_id_id", "event_inbox", ["workspace_id", "id"])
    # The file keeps its rows: should this downgrade fail after all, none is lost, and a
    # request found twice has its messages dropped the second time as already processed.
    inbox = _inbox_file()
    try:
        with inbox.read() as session:
            waiting = session.execute(sa.text(WAITING))
            rows = [row._asdict() for row in waiting]
    finally:
        inbox.dispose()
    if rows:
        op.get_bind().execute(
            sa.text(ADD),
            rows,
        )
