"""event inbox: one row per accepted request instead of one per message

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

import sodate.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Messages still waiting are carried over, each as a request of its own.
    waiting = (
        op.get_bind()
        .execute(sa.text("SELECT workspace_id, payload, received_at FROM event_inbox ORDER BY id"))
        .all()
    )
    op.drop_table("event_inbox")
    op.create_table(
        "event_inbox",
        sa.Column("id", sodate.db.base.BigId, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("received_at", sodate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_inbox_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_inbox")),
    )
    op.create_index("ix_event_inbox_workspace_id_id", "event_inbox", ["workspace_id", "id"])
    if waiting:
        op.get_bind().execute(
            sa.text(
                "INSERT INTO event_inbox (workspace_id, messages, message_count, received_at)"
                " VALUES (:workspace_id, :messages, 1, :received_at)"
            ),
            [
                {"workspace_id": w, "messages": f"[{payload}]", "received_at": at}
                for w, payload, at in waiting
            ],
        )


def downgrade() -> None:
    waiting = (
        op.get_bind()
        .execute(sa.text("SELECT workspace_id, messages, received_at FROM event_inbox ORDER BY id"))
        .all()
    )
    op.drop_index("ix_event_inbox_workspace_id_id", table_name="event_inbox")
    op.drop_table("event_inbox")
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
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for workspace_id, messages, received_at in waiting:
        for message in json.loads(messages):
            rows.setdefault(
                (workspace_id, message["messageId"]),
                {
                    "workspace_id": workspace_id,
                    "message_id": message["messageId"],
                    "payload": json.dumps(message, ensure_ascii=False),
                    "received_at": received_at,
                },
            )
    if rows:
        op.get_bind().execute(
            sa.text(
                "INSERT INTO event_inbox (workspace_id, message_id, payload, received_at)"
                " VALUES (:workspace_id, :message_id, :payload, :received_at)"
            ),
            list(rows.values()),
        )
