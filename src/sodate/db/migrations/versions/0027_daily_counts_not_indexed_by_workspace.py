"""event_daily_counts: no index on the workspace

Nothing reads the daily counts by workspace: the pipeline adds to them by (contact, name, day),
merges move them by contact, and a contact's rows are where its key begins. Since migration
0026, a SQLite index on the workspace alone holds the whole key after it, so each count a batch
adds for a new (contact, name, day) was an insert at a random place in that index too.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_event_daily_counts_workspace_id", table_name="event_daily_counts")


def downgrade() -> None:
    op.create_index(
        "ix_event_daily_counts_workspace_id", "event_daily_counts", ["workspace_id"], unique=False
    )
