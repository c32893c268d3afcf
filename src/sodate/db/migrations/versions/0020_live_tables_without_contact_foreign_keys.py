"""live tables without contact and workspace foreign keys: the rows that scores, segments,
stages and orders keep per contact stop paying a reference check each (as 0015's tables did)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# (table, column, referenced table) of each key dropped. Keys to a segment or a scoring model
# stay: deleting one deletes its rows. Code that deletes a contact or workspace deletes these
# rows itself (sodate/events/README.md).
FOREIGN_KEYS = (
    ("segment_members", "contact_id", "contacts"),
    ("segment_members", "workspace_id", "workspaces"),
    ("segment_changes", "contact_id", "contacts"),
    ("segment_changes", "workspace_id", "workspaces"),
    ("contact_scores", "contact_id", "contacts"),
    ("contact_scores", "workspace_id", "workspaces"),
    ("contact_score_rules", "contact_id", "contacts"),
    ("contact_score_rules", "workspace_id", "workspaces"),
    ("score_daily_awards", "contact_id", "contacts"),
    ("score_history", "contact_id", "contacts"),
    ("score_history", "workspace_id", "workspaces"),
    ("score_crossings", "contact_id", "contacts"),
    ("score_crossings", "workspace_id", "workspaces"),
    ("score_resets", "contact_id", "contacts"),
    ("contact_stages", "contact_id", "contacts"),
    ("contact_stages", "workspace_id", "workspaces"),
    ("lifecycle_changes", "contact_id", "contacts"),
    ("lifecycle_changes", "workspace_id", "workspaces"),
    ("orders", "contact_id", "contacts"),
    ("orders", "workspace_id", "workspaces"),
    ("carts", "contact_id", "contacts"),
    ("carts", "workspace_id", "workspaces"),
)
TABLES = tuple(dict.fromkeys(table for table, _column, _referenced in FOREIGN_KEYS))


def _keys_of(table: str) -> list[tuple[str, str, str]]:
    """(name, column, referenced table) of the table's keys."""
    return [
        (f"fk_{table}_{column}_{referenced}", column, referenced)
        for key_table, column, referenced in FOREIGN_KEYS
        if key_table == table
    ]


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _column, _referenced in _keys_of(table):
                batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, referenced in _keys_of(table):
                batch_op.create_foreign_key(name, referenced, [column], ["id"], ondelete="CASCADE")
