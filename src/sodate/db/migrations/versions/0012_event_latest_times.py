"""event_latest_times: each contact's latest times per event name, filled from the events

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
        "event_latest_times",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("latest_1", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        *(
            sa.Column(f"latest_{rank}", sodate.db.base.UTCDateTime(timezone=True), nullable=True)
            for rank in RANKS[1:]
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_event_latest_times_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_latest_times_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "name", "contact_id", name=op.f("pk_event_latest_times")
        ),
        sqlite_with_rowid=False,
    )
    # The events stored so far, ranked newest first per contact and name.
    latest = ", ".join(f"latest_{rank}" for rank in RANKS)
    pivot = ", ".join(f"max(CASE WHEN rank = {rank} THEN timestamp END)" for rank in RANKS)
    op.execute(
        f"INSERT INTO event_latest_times (workspace_id, name, contact_id, {latest})"  # noqa: S608
        f" SELECT workspace_id, name, contact_id, {pivot} FROM ("
        "  SELECT workspace_id, name, contact_id, timestamp,"
        "   row_number() OVER (PARTITION BY contact_id, name ORDER BY timestamp DESC) AS rank"
        "  FROM events WHERE name IS NOT NULL AND name <> ''"
        f" ) AS ranked WHERE rank <= {len(RANKS)}"
        " GROUP BY workspace_id, name, contact_id"
    )
    with op.batch_alter_table("event_latest_times", schema=None) as batch_op:
        batch_op.create_index("ix_event_latest_times_contact_id", ["contact_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_latest_times", schema=None) as batch_op:
        batch_op.drop_index("ix_event_latest_times_contact_id")
    op.drop_table("event_latest_times")
