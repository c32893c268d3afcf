"""contacts indexed by workspace and id, no longer by workspace and email

An index by email put every contact an import creates at a random place in it, and each such
place is a page written to the log and copied back at the next checkpoint: with the rows of a
file in no particular order, a third of an import's writes. Nothing looks contacts up by that
index (an email leads to its contact through `contact_identities`); lists, pages and exports
read a workspace's contacts in the order of their ids, which the new index gives, and new
contacts go at its end.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_workspace_id_email")
        batch_op.create_index("ix_contacts_workspace_id_id", ["workspace_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_workspace_id_id")
        batch_op.create_index(
            "ix_contacts_workspace_id_email", ["workspace_id", "email"], unique=False
        )
