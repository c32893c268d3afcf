"""customer data: contacts, identities, merges, companies, events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("traits", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("created_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_companies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint(
            "workspace_id", "group_key", name=op.f("uq_companies_workspace_id_group_key")
        ),
    )
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_companies_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "event_inbox",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_inbox_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_inbox")),
        sa.UniqueConstraint(
            "workspace_id", "message_id", name=op.f("uq_event_inbox_workspace_id_message_id")
        ),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("traits", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("company_id", sodate.db.base.BigId, nullable=True),
        sa.Column("sources", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("first_seen_at", sodate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sodate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("merged_into_id", sodate.db.base.BigId, nullable=True),
        sa.Column("created_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_contacts_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["contacts.id"],
            name=op.f("fk_contacts_merged_into_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contacts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_company_id"), ["company_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_contacts_merged_into_id"), ["merged_into_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_contacts_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(
            "ix_contacts_workspace_id_email", ["workspace_id", "email"], unique=False
        )

    op.create_table(
        "contact_identities",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("created_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_identities_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_identities_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_identities")),
        sa.UniqueConstraint(
            "workspace_id",
            "kind",
            "value",
            name=op.f("uq_contact_identities_workspace_id_kind_value"),
        ),
    )
    with op.batch_alter_table("contact_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_identities_contact_id"), ["contact_id"], unique=False
        )

    op.create_table(
        "contact_merges",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("survivor_id", sodate.db.base.BigId, nullable=False),
        sa.Column("merged_id", sodate.db.base.BigId, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("details", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("created_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_id"],
            ["contacts.id"],
            name=op.f("fk_contact_merges_merged_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"],
            ["contacts.id"],
            name=op.f("fk_contact_merges_survivor_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_merges_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_merges_merged_id"), ["merged_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_contact_merges_survivor_id"), ["survivor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_contact_merges_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "event_daily_counts",
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_event_daily_counts_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_daily_counts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "name", "day", name=op.f("pk_event_daily_counts")),
    )
    with op.batch_alter_table("event_daily_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_daily_counts_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("properties", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("context", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("timestamp", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_events_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "workspace_id", "message_id", name=op.f("uq_events_workspace_id_message_id")
        ),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_contact_id_timestamp", ["contact_id", "timestamp"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_contact_id_timestamp")

    op.drop_table("events")
    with op.batch_alter_table("event_daily_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_daily_counts_workspace_id"))

    op.drop_table("event_daily_counts")
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_merges_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_contact_merges_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_contact_merges_merged_id"))

    op.drop_table("contact_merges")
    with op.batch_alter_table("contact_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_identities_contact_id"))

    op.drop_table("contact_identities")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_workspace_id_email")
        batch_op.drop_index(batch_op.f("ix_contacts_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_contacts_merged_into_id"))
        batch_op.drop_index(batch_op.f("ix_contacts_company_id"))

    op.drop_table("contacts")
    op.drop_table("event_inbox")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_companies_workspace_id"))

    op.drop_table("companies")
