"""leaner contact indexes: no index on the workspace alone (the workspace-and-email index
leads with it), and the merge redirect indexed only where a contact has one

Every new contact paid for both in every index it entered; an import creates a contact a row.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

MERGED = sa.text("merged_into_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_contacts_workspace_id", table_name="contacts")
    op.drop_index("ix_contacts_merged_into_id", table_name="contacts")
    op.create_index(
        "ix_contacts_merged_into_id",
        "contacts",
        ["merged_into_id"],
        sqlite_where=MERGED,
        postgresql_where=MERGED,
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_merged_into_id", table_name="contacts")
    op.create_index("ix_contacts_merged_into_id", "contacts", ["merged_into_id"])
    op.create_index("ix_contacts_workspace_id", "contacts", ["workspace_id"])
