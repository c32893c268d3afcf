"""lifecycle: contact stages, their changes, workspace rules

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_rules",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("definition", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("updated_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_lifecycle_rules_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_lifecycle_rules")),
    )
    op.create_table(
        "contact_stages",
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("since", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resume_stage", sa.String(length=16), nullable=True),
        sa.Column("cycle_started_at", sodate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_stages_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_stages_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_stages")),
    )
    with op.batch_alter_table("contact_stages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_stages_workspace_id_stage", ["workspace_id", "stage"], unique=False
        )

    op.create_table(
        "lifecycle_changes",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=True),
        sa.Column("user_id", sodate.db.base.BigId, nullable=True),
        sa.Column("api_key_id", sodate.db.base.BigId, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_lifecycle_changes_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_lifecycle_changes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_changes")),
    )
    with op.batch_alter_table("lifecycle_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lifecycle_changes_contact_id_id", ["contact_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_lifecycle_changes_workspace_id_id", ["workspace_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lifecycle_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_lifecycle_changes_workspace_id_id")
        batch_op.drop_index("ix_lifecycle_changes_contact_id_id")

    op.drop_table("lifecycle_changes")
    with op.batch_alter_table("contact_stages", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_stages_workspace_id_stage")

    op.drop_table("contact_stages")
    op.drop_table("lifecycle_rules")
