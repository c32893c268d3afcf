"""Contacts and companies: finding, listing and showing them; the profile operations.

Profile writes that resolve identities run through the event pipeline (`sodate.pipeline`), so
an API upsert or an import row has the same effects, and the same history, as an identify
call. The functions here flush and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.sql_values import folded
from sodate.conditions.terms import fold
from sodate.contacts.companies import CompanyChange, contacts_of_companies, upsert_companies
from sodate.contacts.identifiers import (
    IdentityKind,
    external_kind,
    normalize_email,
    normalize_phone,
)
from sodate.contacts.identity import Resolution, merge_contact_rows, resolve_identities
from sodate.contacts.models import (
    Company,
    Contact,
    ContactIdentity,
    ContactMerge,
    identity_key,
)
from sodate.contacts.profiles import (
    ProfileChange,
    apply_profile_changes,
    display_name,
    search_key,
)
from sodate.contacts.schemas import (
    CompanyOut,
    CompanyPage,
    CompanyRef,
    ContactOut,
    ContactPage,
    IdentityOut,
    MergeOut,
)
from sodate.db.paging import fetch_page
from sodate.db.plans import workspace_check
from sodate.errors import NotFound

__all__ = [
    "CompanyChange",
    "ContactFilter",
    "ContactMoved",
    "ProfileChange",
    "Resolution",
    "apply_profile_changes",
    "contacts_of_companies",
    "merge_contact_rows",
    "resolve_identities",
    "upsert_companies",
]


class ContactMoved(Exception):
    """The contact was merged into another; callers redirect to it."""

    def __init__(self, contact_id: int) -> None:
        super().__init__(f"merged into contact {contact_id}")
        self.contact_id = contact_id


@dataclass(frozen=True)
class ContactFilter:
    email: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    phone: str | None = None
    external: tuple[str, str] | None = None
    q: str | None = None
    company_id: int | None = None
    traits: tuple[tuple[str, str], ...] = ()


def get_contact(session: Session, workspace_id: str, contact_id: int) -> ContactOut:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != workspace_id:
        raise NotFound(f"no contact {contact_id}")
    if contact.merged_into_id is not None:
        raise ContactMoved(contact.merged_into_id)
    return contacts_out(session, [contact])[0]


def contacts_by_ids(session: Session, workspace_id: str, ids: Sequence[int]) -> list[ContactOut]:
    """The workspace's contacts with these ids, shown in the order of `ids`."""
    found = {
        contact.id: contact
        for contact in session.scalars(
            sa.select(Contact).where(
                workspace_check(Contact.workspace_id, workspace_id), Contact.id.in_(ids)
            )
        )
    }
    return contacts_out(session, [found[i] for i in ids if i in found])


def live_contact_ids(session: Session, workspace_id: str, ids: Sequence[int]) -> set[int]:
    """Which of these ids are the workspace's live (not merged) contacts."""
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                sa.select(Contact.id).where(
                    workspace_check(Contact.workspace_id, workspace_id),
                    Contact.merged_into_id.is_(None),
                    Contact.id.in_(ids[start : start + 500]),
                )
            )
        )
    return found


CONTACT_ID = "id"
"""The kind `live_contacts_by` reads as contact ids rather than as identifiers."""


def live_contacts_by(
    session: Session, workspace_id: str, kind: str, values: Sequence[str]
) -> dict[str, int]:
    """The live contact each value leads to, for many values of one kind at once.

    `kind` is `CONTACT_ID` (values are ids written `str(id)`; a merged contact's id leads to the
    contact it was merged into) or an identity kind (`email`, `phone`, `user_id`,
    `external:<type>`, …; values normalized as `contacts.identifiers` does). Values that lead
    nowhere in the workspace are left out. One query per 500 distinct values.
    """
    wanted = sorted(set(values))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        if kind == CONTACT_ID:
            text_of = {int(value): value for value in chunk}
            redirects = session.execute(
                sa.select(Contact.id, sa.func.coalesce(Contact.merged_into_id, Contact.id)).where(
                    workspace_check(Contact.workspace_id, workspace_id),
                    Contact.id.in_(text_of),
                )
            )
            found.update((text_of[contact_id], live) for contact_id, live in redirects)
        else:
            # A merge moves every identity to the survivor: identities lead to live contacts.
            owners = session.execute(
                sa.select(ContactIdentity.value, ContactIdentity.contact_id).where(
                    ContactIdentity.key.in_([identity_key(workspace_id, kind, v) for v in chunk]),
                    *_identity_is(workspace_id, kind),
                )
            )
            asked = set(chunk)
            found.update((value, contact_id) for value, contact_id in owners if value in asked)
    return found


def live_contact_id(session: Session, workspace_id: str, contact_id: int) -> int:
    """The contact's id, or the id it was merged into; NotFound if it is not in the workspace."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != workspace_id:
        raise NotFound(f"no contact {contact_id}")
    return contact.merged_into_id or contact.id


def list_contacts(
    session: Session, workspace_id: str, where: ContactFilter, *, limit: int, after: int | None
) -> ContactPage:
    statement = (
        sa.select(Contact)
        .where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
        .order_by(Contact.id)
    )
    if after is not None:
        statement = statement.where(Contact.id > after)
    # Each identifier leads to at most one contact (`ContactIdentity`; the oldest row, should
    # a second ever be stored): compared as `id = (…)`, the lookup runs once and the contact is
    # fetched by id, whatever the planner's statistics say (with `IN` or a join, PostgreSQL
    # may walk every contact of a young table instead).
    for kind, value in _identity_filters(where):
        statement = statement.where(
            Contact.id
            == sa.select(ContactIdentity.contact_id)
            .where(
                ContactIdentity.key == identity_key(workspace_id, kind, value),
                *_identity_is(workspace_id, kind),
                ContactIdentity.value == value,
            )
            .order_by(ContactIdentity.id)
            .limit(1)
            .scalar_subquery()
        )
    if where.q and (key := search_key(where.q)):
        # A phone number as people write it (090-1234-5678) is found as it is stored.
        keys = {key, normalize_phone(where.q) or key}
        statement = statement.where(
            sa.or_(*(Contact.search_text.like(f"%{_escape_like(k)}%", escape="\\") for k in keys))
        )
    if where.company_id is not None:
        statement = statement.where(Contact.company_id == where.company_id)
    for key, value in where.traits:
        statement = statement.where(_trait_text(session, key) == value)
    page, next_cursor = fetch_page(session, statement, limit=limit)
    return ContactPage(items=contacts_out(session, page), next_cursor=next_cursor)


def _identity_is(workspace_id: str, kind: str) -> tuple[sa.ColumnElement[bool], ...]:
    """Beside a lookup by key (`identity_key`), which another identity may share."""
    return ContactIdentity.workspace_id == workspace_id, ContactIdentity.kind == kind


def _identity_filters(where: ContactFilter) -> list[tuple[str, str]]:
    filters: list[tuple[str, str]] = []
    if where.email is not None:
        filters.append((IdentityKind.EMAIL, normalize_email(where.email) or where.email))
    if where.user_id is not None:
        filters.append((IdentityKind.USER_ID, where.user_id))
    if where.anonymous_id is not None:
        filters.append((IdentityKind.ANONYMOUS_ID, where.anonymous_id))
    if where.phone is not None:
        filters.append((IdentityKind.PHONE, normalize_phone(where.phone) or where.phone))
    if where.external is not None:
        filters.append((external_kind(where.external[0]), where.external[1]))
    return filters


def _trait_text(session: Session, key: str) -> sa.ColumnElement[Any]:
    """A trait's value as text, the same on both databases (`true`, `false`, `30`, `pro`).

    PostgreSQL's `->>` gives JSON booleans as `true` / `false`; SQLite's JSON_EXTRACT gives 1 / 0,
    so there the JSON type names them.
    """
    text: sa.ColumnElement[Any] = Contact.traits[key].as_string()
    if session.get_bind().dialect.name != "sqlite":
        return text
    kind = sa.func.json_type(Contact.traits, f'$."{key}"', type_=sa.String)
    return sa.case((kind.in_(("true", "false")), kind), else_=text)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contacts_out(session: Session, contacts: Sequence[Contact]) -> list[ContactOut]:
    """Show contacts with their identities and company, in three queries whatever their number."""
    ids = [contact.id for contact in contacts]
    identities: dict[int, list[IdentityOut]] = defaultdict(list)
    if ids:
        for kind, value, contact_id in session.execute(
            sa.select(ContactIdentity.kind, ContactIdentity.value, ContactIdentity.contact_id)
            .where(ContactIdentity.contact_id.in_(ids))
            .order_by(ContactIdentity.id)
        ):
            identities[contact_id].append(IdentityOut(kind=kind, value=value))
    company_ids = {c.company_id for c in contacts if c.company_id is not None}
    companies = {
        company.id: CompanyRef(
            id=company.id, group_key=company.group_key, name=company.name, traits=company.traits
        )
        for company in (
            session.execute(sa.select(Company).where(Company.id.in_(company_ids))).scalars()
            if company_ids
            else ()
        )
    }
    return [
        ContactOut(
            id=contact.id,
            email=contact.email,
            phone=contact.phone,
            user_id=contact.user_id,
            name=display_name(contact.traits),
            traits=contact.traits,
            identities=identities[contact.id],
            company=companies.get(contact.company_id) if contact.company_id else None,
            sources=contact.sources,
            first_seen_at=contact.first_seen_at,
            last_seen_at=contact.last_seen_at,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        )
        for contact in contacts
    ]


def list_merges(session: Session, workspace_id: str, contact_id: int) -> list[MergeOut]:
    """The merges that made this contact what it is, oldest first."""
    rows = session.execute(
        sa.select(ContactMerge)
        .where(ContactMerge.workspace_id == workspace_id, ContactMerge.survivor_id == contact_id)
        .order_by(ContactMerge.id)
    ).scalars()
    return [MergeOut.model_validate(merge, from_attributes=True) for merge in rows]


def get_company(session: Session, workspace_id: str, company_id: int) -> CompanyOut:
    company = session.get(Company, company_id)
    if company is None or company.workspace_id != workspace_id:
        raise NotFound(f"no company {company_id}")
    return _companies_out(session, [company])[0]


def company_id_by_key(session: Session, workspace_id: str, group_key: str) -> int:
    company_id = session.execute(
        sa.select(Company.id).where(
            Company.workspace_id == workspace_id, Company.group_key == group_key
        )
    ).scalar()
    if company_id is None:
        raise NotFound(f"no company with group key {group_key!r}")
    return company_id


def list_companies(
    session: Session, workspace_id: str, *, q: str | None, limit: int, after: int | None
) -> CompanyPage:
    statement = sa.select(Company).where(Company.workspace_id == workspace_id).order_by(Company.id)
    if after is not None:
        statement = statement.where(Company.id > after)
    if q:
        # Case folded as every text comparison folds it, on both databases: A–Z only, where
        # PostgreSQL's ILIKE also folded É and Ａ.
        pattern = "%" + _escape_like(fold(q.strip())) + "%"
        postgresql = session.get_bind().dialect.name == "postgresql"
        name = folded(Company.name, postgresql=postgresql)
        statement = statement.where(
            sa.or_(name.like(pattern, escape="\\"), Company.group_key == q.strip())
        )
    page, next_cursor = fetch_page(session, statement, limit=limit)
    return CompanyPage(items=_companies_out(session, page), next_cursor=next_cursor)


def _companies_out(session: Session, companies: Sequence[Company]) -> list[CompanyOut]:
    ids = [company.id for company in companies]
    counts: dict[int, int] = {}
    if ids:
        counts = {
            company_id: count
            for company_id, count in session.execute(
                sa.select(Contact.company_id, sa.func.count())
                .where(Contact.company_id.in_(ids), Contact.merged_into_id.is_(None))
                .group_by(Contact.company_id)
            )
            if company_id is not None
        }
    return [
        CompanyOut(
            id=c.id,
            group_key=c.group_key,
            name=c.name,
            traits=c.traits,
            contact_count=counts.get(c.id, 0),
            created_at=c.created_at,
            updated_at=c.updated_at,
        )
        for c in companies
    ]
