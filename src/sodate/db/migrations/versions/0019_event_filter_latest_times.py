"""event_filters and event_filter_latest_times: each contact's latest times of the events that
match the property filters live segments count

Empty at first: the event pipeline registers and fills a filter when a batch finds a dynamic
segment counting it (`sodate.conditions.filtered`).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# Five columns, as sodate.events.models.LATEST_KEPT was when this migration was written.
RANKS = range(1, 6)


def upgrade() -> None:
    op.create_table(
        "event_filters",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filters", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("since", sodate.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_filters_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_filters")),
        sa.UniqueConstraint(
            "workspace_id", "digest", name=op.f("uq_event_filters_workspace_id_digest")
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_filter_latest_times",
        sa.Column("filter_id", sodate.db.base.BigId, nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("latest_1", sodate.db.base.MicrosecondTime(), nullable=False),
        *(
            sa.Column(f"latest_{rank}", sodate.db.base.MicrosecondTime(), nullable=True)
            for rank in RANKS[1:]
        ),
        sa.PrimaryKeyConstraint(
            "filter_id", "contact_id", name=op.f("pk_event_filter_latest_times")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_event_filter_latest_times_contact_id",
        "event_filter_latest_times",
        ["contact_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_event_filter_latest_times_contact_id", table_name="event_filter_latest_times")
    op.drop_table("event_filter_latest_times")
    op.drop_table("event_filters")
