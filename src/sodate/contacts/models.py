"""Tables of contacts, their identities, merges and companies."""

from __future__ import annotations

import struct
from datetime import datetime
from hashlib import sha256
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class Company(Base):
    """A B2B account; `group_key` is the id a `group` call names it by."""

    __tablename__ = "companies"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "group_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    group_key: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str | None] = mapped_column(sa.String(300))
    traits: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Contact(Base):
    """One person. A merged contact stays as a redirect to the contact it was merged into."""

    __tablename__ = "contacts"
    # The workspace has no index of its own: this one leads with it, and gives a workspace's
    # contacts in the order of their ids (its lists, pages and exports). Nothing is indexed by
    # email: an email leads to its contact through `contact_identities`, and an index by email
    # took every contact an import creates at a random place (a page written for each). A
    # merged contact's redirect is indexed only where there is one (a contact insert then
    # skips that index).
    __table_args__ = (
        sa.Index("ix_contacts_workspace_id_id", "workspace_id", "id"),
        sa.Index(
            "ix_contacts_merged_into_id",
            "merged_into_id",
            sqlite_where=sa.text("merged_into_id IS NOT NULL"),
            postgresql_where=sa.text("merged_into_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    traits: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    company_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    sources: Mapped[list[str]] = mapped_column(JSONDocument)
    first_seen_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


def identity_key(workspace_id: str, kind: str, value: str) -> int:
    """An identity's hash: the first 8 bytes of the SHA-256 of its workspace, kind and value
    (joined by U+001F), as a signed 64-bit integer.

    Two identities may share a key; lookups compare the identities themselves. SHA-256 because
    PostgreSQL computes it too (migration 0028 fills the keys of stored identities in SQL).
    """
    key: int = _SIGNED_64.unpack_from(
        sha256(f"{workspace_id}\x1f{kind}\x1f{value}".encode()).digest()
    )[0]
    return key


_SIGNED_64 = struct.Struct(">q")


class ContactIdentity(Base):
    """An identifier that leads to a contact: user id, anonymous id, email, phone, external id.

    `kind` is `user_id`, `anonymous_id`, `email`, `phone` or `external:<type>`; each value
    leads to one contact in a workspace.

    Identities are found by their `key` (`identity_key`), not by an index of their texts: the
    texts' index was three times the size, and each identity a file or a new visitor brings
    went in at a random place in it (`BENCHMARKS.md`, "Identity keys"). No unique index holds
    a value to one contact: only identity resolution stores identities
    (`sodate.contacts.identity`), under the workspace's processing lock, and only those it
    looked up and did not find. So whatever writes identities holds that lock in a transaction
    that sees what the lock's previous holder committed (READ COMMITTED on PostgreSQL), and
    whatever changes a workspace, kind or value computes its key again.

    No foreign keys, like the event tables (`sodate.events.models`): the pipeline writes these
    rows with the contacts it creates.
    """

    __tablename__ = "contact_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[str] = mapped_column(sa.String(320))
    key: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    contact_id: Mapped[int] = mapped_column(BigId, index=True)
    created_at: Mapped[datetime]


class ContactMerge(Base):
    """What was merged into what, when and why."""

    __tablename__ = "contact_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    survivor_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    merged_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(sa.String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
