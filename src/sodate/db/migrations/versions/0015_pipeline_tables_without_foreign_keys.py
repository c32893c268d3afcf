"""pipeline tables without foreign keys: the rows the event processor writes for every event,
contact and name stop paying PostgreSQL's per-row reference checks (and their row locks)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (table, column, referenced table) of each key dropped; code that deletes a contact or
# workspace now deletes these rows itself (sodate/events/README.md).
FOREIGN_KEYS = (
    ("events", "workspace_id", "workspaces"),
    ("events", "contact_id", "contacts"),
    ("event_daily_counts", "workspace_id", "workspaces"),
    ("event_daily_counts", "contact_id", "contacts"),
    ("event_latest_times", "name_id", "event_names"),
    ("event_latest_times", "contact_id", "contacts"),
    ("contact_identities", "workspace_id", "workspaces"),
    ("contact_identities", "contact_id", "contacts"),
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
