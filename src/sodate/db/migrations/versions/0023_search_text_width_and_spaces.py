"""contacts' search text width-folded and without spaces, a space between fields

A search for 山田太郎 missed 山田　太郎, ＨＡＮＡＫＯ missed hanako: the search text was only case
folded. It is now made by `sodate.contacts.profiles.search_text`, which folds width and drops
the spaces within each field; this makes it again for every contact.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-24
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from sodate.contacts.profiles import search_text

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

PAGE = 2000


def upgrade() -> None:
    bind = op.get_bind()
    last = 0
    while rows := bind.execute(
        sa.text(
            "SELECT id, traits, email, phone, user_id FROM contacts"
            " WHERE id > :last AND merged_into_id IS NULL ORDER BY id LIMIT :page"
        ),
        {"last": last, "page": PAGE},
    ).all():
        bind.execute(
            sa.text("UPDATE contacts SET search_text = :text WHERE id = :id"),
            [
                {
                    "id": contact_id,
                    "text": search_text(
                        traits if isinstance(traits, dict) else json.loads(traits or "{}"),
                        email=email,
                        phone=phone,
                        user_id=user_id,
                    ),
                }
                for contact_id, traits, email, phone, user_id in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: an earlier Sodate finds contacts in this text too, except by a search
    with spaces in it."""
