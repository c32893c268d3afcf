"""email identities in one form however they came: full-width letters folded (NFKC)

Tracking and the API's upserts kept the full-width letters of an address's local part
(`ｙａｍａｄａ@example.jp`) where a CSV import folded them (`yamada@example.jp`), so one
person could become two contacts. Every path now folds them (`normalize_email`); this folds
the addresses stored before. An address whose folded form already leads to another contact
is left as it is: those two contacts are for a person to merge.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sodate.contacts.identifiers import normalize_email

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # Only addresses with characters outside printable ASCII can fold into another form.
    wide = "value GLOB '*[^ -~]*'" if bind.dialect.name == "sqlite" else "value ~ '[^ -~]'"
    rows = bind.execute(
        sa.text(
            "SELECT id, workspace_id, value, contact_id FROM contact_identities"  # noqa: S608 (no input)
            f" WHERE kind = 'email' AND {wide}"
        )
    ).all()
    for identity_id, workspace_id, value, contact_id in rows:
        folded = normalize_email(value)
        if folded is None or folded == value:
            continue
        taken = bind.execute(
            sa.text(
                "SELECT 1 FROM contact_identities"
                " WHERE workspace_id = :workspace AND kind = 'email' AND value = :value"
            ),
            {"workspace": workspace_id, "value": folded},
        ).first()
        if taken:
            continue
        bind.execute(
            sa.text("UPDATE contact_identities SET value = :value WHERE id = :id"),
            {"value": folded, "id": identity_id},
        )
        bind.execute(
            sa.text("UPDATE contacts SET email = :folded WHERE id = :id AND email = :value"),
            {"folded": folded, "id": contact_id, "value": value},
        )


def downgrade() -> None:
    """Nothing to undo: the folded addresses are what the earlier code made of imports."""
