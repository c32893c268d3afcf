"""handoff: rules, handoffs and their steps; score resets

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff_rules",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("definition", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("read_changes_to", sodate.db.base.BigId, nullable=False),
        sa.Column("last_owners", sodate.db.base.JSONDocument, nullable=False),
        sa.Column("updated_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_handoff_rules_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_handoff_rules")),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("mql_change_id", sodate.db.base.BigId, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("assigned_by", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", sodate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("decided_at", sodate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("engagement_reset", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_handoffs_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_handoffs_owner_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_handoffs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
        sa.UniqueConstraint("mql_change_id", name=op.f("uq_handoffs_mql_change_id")),
    )
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.create_index("ix_handoffs_contact_id", ["contact_id"], unique=False)
        batch_op.create_index(
            "ix_handoffs_workspace_id_state", ["workspace_id", "state"], unique=False
        )

    op.create_table(
        "score_resets",
        sa.Column("model_id", sodate.db.base.BigId, nullable=False),
        sa.Column("contact_id", sodate.db.base.BigId, nullable=False),
        sa.Column("at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_score_resets_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["scoring_models.id"],
            name=op.f("fk_score_resets_model_id_scoring_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "contact_id", name=op.f("pk_score_resets")),
    )
    op.create_table(
        "handoff_steps",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("handoff_id", sodate.db.base.BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.Column("by_api_key_id", sodate.db.base.BigId, nullable=True),
        sa.Column("at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["by_user_id"],
            ["users.id"],
            name=op.f("fk_handoff_steps_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_handoff_steps_handoff_id_handoffs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_handoff_steps_owner_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_steps")),
    )
    with op.batch_alter_table("handoff_steps", schema=None) as batch_op:
        batch_op.create_index("ix_handoff_steps_handoff_id_id", ["handoff_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoff_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_handoff_steps_handoff_id_id")

    op.drop_table("handoff_steps")
    op.drop_table("score_resets")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_index("ix_handoffs_workspace_id_state")
        batch_op.drop_index("ix_handoffs_contact_id")

    op.drop_table("handoffs")
    op.drop_table("handoff_rules")
