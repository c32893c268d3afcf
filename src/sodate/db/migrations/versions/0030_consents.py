"""consent_records and contact_consents: every grant and withdrawal of consent with its proof,
and each contact's consent now per channel and purpose

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_records",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("at", sodate.db.base.UTCDateTime(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("user_id", sodate.db.base.BigId, nullable=True),
        sa.Column("api_key_id", sodate.db.base.BigId, nullable=True),
        sa.Column("recorded_at", sodate.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_consent_records_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    op.create_index(
        "ix_consent_records_contact_id_id", "consent_records", ["contact_id", "id"], unique=False
    )
    op.create_index(
        "ix_consent_records_workspace_id_id",
        "consent_records",
        ["workspace_id", "id"],
        unique=False,
    )
    op.create_table(
        "contact_consents",
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("since", sodate.db.base.UTCDateTime(), nullable=False),
        sa.Column("record_id", sodate.db.base.BigId, nullable=False),
        sa.PrimaryKeyConstraint(
            "contact_id", "channel", "purpose", name=op.f("pk_contact_consents")
        ),
    )
    op.create_index(
        "ix_contact_consents_workspace_id_channel_purpose_granted",
        "contact_consents",
        ["workspace_id", "channel", "purpose", "granted"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_contact_consents_workspace_id_channel_purpose_granted", table_name="contact_consents"
    )
    op.drop_table("contact_consents")
    op.drop_index("ix_consent_records_workspace_id_id", table_name="consent_records")
    op.drop_index("ix_consent_records_contact_id_id", table_name="consent_records")
    op.drop_table("consent_records")
