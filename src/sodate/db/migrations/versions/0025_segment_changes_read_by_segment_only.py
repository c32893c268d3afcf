"""segment changes indexed by segment alone

The changes were also indexed by contact and by (workspace, id), and nothing read them that
way. Each index is written for every change, and a batch of events that brings new contacts
records a dozen changes for each (their first segments): the two cost the event processor
1.4 µs an event with 50 live segments in a fresh workspace.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_changes_workspace_id_id")
        batch_op.drop_index("ix_segment_changes_contact_id")


def downgrade() -> None:
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.create_index("ix_segment_changes_contact_id", ["contact_id"], unique=False)
        batch_op.create_index(
            "ix_segment_changes_workspace_id_id", ["workspace_id", "id"], unique=False
        )
