"""event message keys: message ids looked up by an 8-byte hash instead of a unique index of
(workspace, message id) text, five times its size and dearer to insert into at random

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

from hashlib import sha256

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _message_key(message_id: str) -> int:
    # As `sodate.events.models.message_key` computes it today; a migration keeps its own copy.
    return int.from_bytes(sha256(message_id.encode()).digest()[:8], "big", signed=True)


def upgrade() -> None:
    op.add_column("events", sa.Column("message_key", sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute(
            "UPDATE events SET message_key = ('x' || left(encode(sha256("
            "convert_to(message_id, 'UTF8')), 'hex'), 16))::bit(64)::bigint"
        )
    else:
        driver = connection.connection.driver_connection
        assert driver is not None  # a live connection of the sqlite3 module
        driver.create_function("sodate_message_key", 1, _message_key, deterministic=True)
        op.execute("UPDATE events SET message_key = sodate_message_key(message_id)")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("message_key", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_constraint("uq_events_workspace_id_message_id", type_="unique")
        batch_op.create_index("ix_events_message_key", ["message_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_message_key")
        batch_op.create_unique_constraint(
            "uq_events_workspace_id_message_id", ["workspace_id", "message_id"]
        )
        batch_op.drop_column("message_key")
