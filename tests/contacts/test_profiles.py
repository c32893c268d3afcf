"""Work prepared ahead of an upsert (an import's parsing process does it) changes nothing stored:
a new contact's row, and a whole upsert's contacts and identities, are the same without it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from sodate.contacts.prepared import PreparedContact, identify_traits, prepare_contact
from sodate.contacts.profiles import ProfileChange, new_contact_row
from sodate.contacts.writes import upsert_contacts
from sodate.db.bulk import DriverValues
from sodate.runtime import Runtime
from tests.conftest import new_workspace

TRAIT_NAMES = ("name", "firstName", "lastName", "firstNameKana", "title", "email", "phone", "メモ")
TEXTS = st.sampled_from(["", "  ", "太郎", "佐藤", "Taro", "ＡＢＣ", "部長", "null", "undefined"])
VALUES = st.one_of(
    st.none(), TEXTS, st.integers(-5, 5), st.booleans(), st.just([]), st.just({}), st.just(["a"])
)
EMAILS = st.sampled_from(
    [None, "Taro.Sato@Example.CO.JP", "hanako@example.jp", "not an address", "null", ""]
)
PHONES = st.sampled_from([None, "090-1234-5678", "０３－１２３４－５６７８", "12", "undefined"])
NOW = datetime(2026, 4, 1, tzinfo=UTC)


class Row(NamedTuple):
    """What `upsert_contacts` reads of a row (`ContactData`)."""

    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    external_ids: Mapping[str, str] = {}
    traits: Mapping[str, Any] = {}
    company_key: str | None = None


def _change_of(row: Row, *, source: str, company_id: int | None = None) -> ProfileChange:
    """The change `upsert_contacts` makes of a row: its identify event's traits."""
    return ProfileChange(
        contact_id=0,
        traits=identify_traits(row),
        user_id=row.user_id,
        company_id=company_id,
        source=source,
    )


def _row_of(changes: Sequence[ProfileChange], source: str, postgresql: bool = False) -> Any:
    values = DriverValues("postgresql" if postgresql else "sqlite")
    return new_contact_row(5, "ws", changes, source=source, values=values, stamp="now")


@settings(max_examples=300, deadline=None)
@given(
    traits=st.dictionaries(st.sampled_from(TRAIT_NAMES), VALUES, max_size=5),
    email=EMAILS,
    phone=PHONES,
    user_id=st.sampled_from([None, "", "user-1", "ユーザー2"]),
    company_id=st.sampled_from([None, 7]),
    source=st.sampled_from(["import", "展示会2026"]),
    postgresql=st.booleans(),
)
def test_a_prepared_profile_makes_the_row_the_change_makes(
    traits: dict[str, Any],
    email: str | None,
    phone: str | None,
    user_id: str | None,
    company_id: int | None,
    source: str,
    postgresql: bool,
) -> None:
    row = Row(email, phone, user_id, {}, traits)
    change = _change_of(row, source=source, company_id=company_id)
    ready = prepare_contact(row, workspace_id="ws", source=source)
    prepared = dataclasses.replace(change, prepared=ready.profile)
    assert _row_of([prepared], source, postgresql) == _row_of([change], source, postgresql)
    assert ready.event_traits == DriverValues.json(identify_traits(row))


# A profile prepared for other traits of the same user id, so that a row shows whether it
# was taken; each case below differs from it in one way only.
TARO = Row(email="taro@example.jp", user_id="taro", traits={"firstName": "太郎"})
OTHER = prepare_contact(
    TARO._replace(email="other@example.jp"), workspace_id="ws", source="import"
).profile


@pytest.mark.parametrize(
    "case",
    [
        {"source": "api"},
        {"seen_at": NOW},
        {"clear": ("title",)},
        {"user_id": "someone else"},
    ],
    ids=["another source", "a time seen", "traits cleared", "another user id"],
)
def test_a_prepared_profile_is_not_taken_where_it_cannot_be_the_changes(
    case: dict[str, Any],
) -> None:
    change = dataclasses.replace(_change_of(TARO, source="import"), **case)
    source = case.get("source", "import")
    kept = dataclasses.replace(change, prepared=OTHER)
    assert _row_of([kept], source) == _row_of([change], source)


def test_a_contact_made_by_two_changes_is_worked_out_from_both() -> None:
    first = _change_of(TARO, source="import")
    second = _change_of(Row(email="taro@example.jp", traits={"title": "部長"}), source="import")
    kept = [dataclasses.replace(first, prepared=OTHER), second]
    stored = _row_of(kept, "import")
    assert stored == _row_of([first, second], "import")
    assert '"title":"部長"' in stored[2]


def _stored(runtime: Runtime, workspace_id: str) -> tuple[list[Any], list[Any]]:
    """The workspace's contacts and identities, without ids: each contact named by its row."""
    with runtime.db.read() as session:
        contacts = session.execute(
            sa.text(
                "SELECT id, email, phone, user_id, traits, sources, search_text, company_id,"
                " merged_into_id FROM contacts WHERE workspace_id = :ws ORDER BY id"
            ),
            {"ws": workspace_id},
        ).all()
        identities = session.execute(
            sa.text(
                "SELECT kind, value, contact_id FROM contact_identities WHERE workspace_id = :ws"
            ),
            {"ws": workspace_id},
        ).all()
    order = {row[0]: number for number, row in enumerate(contacts)}
    return (
        [
            (
                *row[1:4],
                DriverValues.stored_json(row[4]),
                DriverValues.stored_json(row[5]),
                row[6],
                row[7] is not None,
                order.get(row[8]),
            )
            for row in contacts
        ],
        sorted((kind, value, order[contact_id]) for kind, value, contact_id in identities),
    )


def test_an_upsert_stores_the_same_with_the_rows_prepared_as_without(runtime: Runtime) -> None:
    stored = [
        Row(email="taro@example.jp", traits={"firstName": "太郎"}),
        Row(phone="090-1111-2222", user_id="hanako", traits={"lastName": "山田"}),
    ]
    chunk = [
        Row(email="new@example.jp", traits={"firstName": "新", "title": ""}, company_key="acme"),
        Row(email="TARO@example.jp", traits={"title": "部長"}),  # stored already
        Row(email="twice@example.jp", traits={"firstName": "一"}),
        Row(email="twice@example.jp", phone="03-1234-5678", traits={"lastName": "二"}),
        Row(email="taro@example.jp", phone="090-1111-2222"),  # two stored contacts
        Row(user_id="u-9", external_ids={"line": "U123"}, traits={"name": "ライン 太郎"}),
    ]
    results = []
    for prepare in (False, True):
        workspace_id = new_workspace(runtime, f"prepared {prepare}").workspace.id
        prepared: list[PreparedContact | None] | None = (
            [prepare_contact(row, workspace_id=workspace_id, source="展示会2026") for row in chunk]
            if prepare
            else None
        )
        with runtime.db.transaction() as session:
            upsert_contacts(session, workspace_id, stored, now=NOW, source="展示会2026")
        with runtime.db.transaction() as session:
            upsert_contacts(
                session, workspace_id, chunk, now=NOW, source="展示会2026", prepared=prepared
            )
        results.append(_stored(runtime, workspace_id))
    without, with_prepared = results
    assert with_prepared == without
    contacts, identities = with_prepared
    assert len(contacts) >= 5
    assert len(identities) >= 7
