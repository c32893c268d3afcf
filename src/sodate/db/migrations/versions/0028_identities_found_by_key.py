"""identity keys: identities looked up by an 8-byte hash of their workspace, kind and value
instead of a unique index of those texts, three times its size and dearer to insert into at
random

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-24
"""

from __future__ import annotations

from hashlib import sha256

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def _identity_key(workspace_id: str, kind: str, value: str) -> int:
    # As `sodate.contacts.models.identity_key` computes it today; a migration keeps its own copy.
    text = f"{workspace_id}\x1f{kind}\x1f{value}"
    return int.from_bytes(sha256(text.encode()).digest()[:8], "big", signed=True)


def upgrade() -> None:
    op.add_column("contact_identities", sa.Column("key", sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute(
            "UPDATE contact_identities SET key = ('x' || left(encode(sha256(convert_to("
            "workspace_id || chr(31) || kind || chr(31) || value, 'UTF8')), 'hex'), 16))"
            "::bit(64)::bigint"
        )
    else:
        driver = connection.connection.driver_connection
        assert driver is not None  # a live connection of the sqlite3 module
        driver.create_function("sodate_identity_key", 3, _identity_key, deterministic=True)
        op.execute(
            "UPDATE contact_identities SET key = sodate_identity_key(workspace_id, kind, value)"
        )
    with op.batch_alter_table("contact_identities", schema=None) as batch_op:
        batch_op.alter_column("key", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_constraint("uq_contact_identities_workspace_id_kind_value", type_="unique")
        batch_op.create_index("ix_contact_identities_key", ["key"], unique=False)


def downgrade() -> None:
    # Nothing should have stored an identity twice; should something have, the oldest row stays.
    op.execute(
        "DELETE FROM contact_identities WHERE id NOT IN (SELECT min(id) FROM contact_identities"
        " GROUP BY workspace_id, kind, value)"
    )
    with op.batch_alter_table("contact_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_identities_key")
        batch_op.create_unique_constraint(
            "uq_contact_identities_workspace_id_kind_value", ["workspace_id", "kind", "value"]
        )
        batch_op.drop_column("key")
