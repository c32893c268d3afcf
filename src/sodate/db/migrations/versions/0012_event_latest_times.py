"""event_names and event_latest_times: each contact's latest times per event name, filled from
the events

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Five columns, as sodate.events.models.LATEST_KEPT was when this migration was written.
RANKS = range(1, 6)


def upgrade() -> None:
    op.create_table(
        "event_names",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_names_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_names")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_event_names_workspace_id_name")),
    )
    op.create_table(
        "event_latest_times",
        sa.Column("name_id", sodate.db.base.BigId, nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("latest_1", sodate.db.base.MicrosecondTime(), nullable=False),
        *(
            sa.Column(f"latest_{rank}", sodate.db.base.MicrosecondTime(), nullable=True)
            for rank in RANKS[1:]
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_event_latest_times_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["name_id"],
            ["event_names.id"],
            name=op.f("fk_event_latest_times_name_id_event_names"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name_id", "contact_id", name=op.f("pk_event_latest_times")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO event_names (workspace_id, name) SELECT DISTINCT workspace_id, name"
        " FROM events WHERE name IS NOT NULL AND name <> ''"
    )
    # The events stored so far, ranked newest first per contact and name; on SQLite the
    # times become microseconds since the epoch (MicrosecondTime).
    if op.get_bind().dialect.name == "postgresql":
        moment = "e.timestamp"
    else:
        moment = (
            "CAST(strftime('%s', e.timestamp) AS INTEGER) * 1000000"
            " + CAST(substr(e.timestamp, 21, 6) AS INTEGER)"
        )
    latest = ", ".join(f"latest_{rank}" for rank in RANKS)
    pivot = ", ".join(f"max(CASE WHEN rank = {rank} THEN moment END)" for rank in RANKS)
    op.execute(
        f"INSERT INTO event_latest_times (name_id, contact_id, {latest})"  # noqa: S608
        f" SELECT name_id, contact_id, {pivot} FROM ("
        f"  SELECT n.id AS name_id, e.contact_id, {moment} AS moment,"
        "   row_number() OVER (PARTITION BY e.contact_id, e.name ORDER BY e.timestamp DESC)"
        "    AS rank"
        "  FROM events e JOIN event_names n ON n.workspace_id = e.workspace_id AND n.name = e.name"
        f" ) AS ranked WHERE rank <= {len(RANKS)}"
        " GROUP BY name_id, contact_id"
    )
    with op.batch_alter_table("event_latest_times", schema=None) as batch_op:
        batch_op.create_index("ix_event_latest_times_contact_id", ["contact_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_latest_times", schema=None) as batch_op:
        batch_op.drop_index("ix_event_latest_times_contact_id")
    op.drop_table("event_latest_times")
    op.drop_table("event_names")
