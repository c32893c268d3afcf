"""segment members by contact: the segment in the index, so reading a contact's memberships
reads the index alone

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_members_contact_id")
        batch_op.create_index(
            "ix_segment_members_contact_id_segment_id", ["contact_id", "segment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_members_contact_id_segment_id")
        batch_op.create_index("ix_segment_members_contact_id", ["contact_id"], unique=False)
