"""A new contact's row is the same whether its profile was prepared ahead or worked out now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from sodate.contacts.profiles import ProfileChange, new_contact_row
from sodate.contacts.writes import prepare_contact
from sodate.db.bulk import DriverValues

TRAIT_NAMES = ("name", "firstName", "lastName", "firstNameKana", "title", "company", "メモ")
TEXTS = st.sampled_from(["", "  ", "太郎", "佐藤", "Taro", "ＡＢＣ", "部長", "null", "undefined"])
VALUES = st.one_of(
    st.none(), TEXTS, st.integers(-5, 5), st.booleans(), st.just([]), st.just({}), st.just(["a"])
)
EMAILS = st.sampled_from(
    [None, "Taro.Sato@Example.CO.JP", "hanako@example.jp", "not an address", "null", ""]
)
PHONES = st.sampled_from([None, "090-1234-5678", "０３－１２３４－５６７８", "12", "undefined"])


class Row(NamedTuple):
    """What `upsert_contacts` reads of a row (`ContactData`)."""

    email: str | None
    phone: str | None
    user_id: str | None
    external_ids: Mapping[str, str]
    traits: Mapping[str, Any]
    company_key: str | None


@settings(max_examples=300, deadline=None)
@given(
    traits=st.dictionaries(st.sampled_from(TRAIT_NAMES), VALUES, max_size=5),
    email=EMAILS,
    phone=PHONES,
    user_id=st.sampled_from([None, "user-1", "ユーザー2"]),
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
    row = Row(email, phone, user_id, {}, traits, None)
    event_traits = dict(traits)
    if email is not None:
        event_traits["email"] = email
    if phone is not None:
        event_traits["phone"] = phone
    change = ProfileChange(
        contact_id=0, traits=event_traits, user_id=user_id, company_id=company_id, source=source
    )
    prepared = ProfileChange(
        contact_id=0,
        traits=event_traits,
        user_id=user_id,
        company_id=company_id,
        source=source,
        prepared=prepare_contact(row, source=source).profile,
    )
    values = DriverValues("postgresql" if postgresql else "sqlite")

    def made(change: ProfileChange) -> tuple[Any, ...]:
        return new_contact_row(5, "ws", [change], source=source, values=values, stamp="now")

    assert made(prepared) == made(change)


def test_a_prepared_profile_of_another_source_is_not_used() -> None:
    row = Row("taro@example.jp", None, None, {}, {"firstName": "太郎"}, None)
    change = ProfileChange(
        contact_id=0,
        traits={"firstName": "太郎", "email": "taro@example.jp"},
        source="api",
        prepared=prepare_contact(row, source="import").profile,
    )
    stored = new_contact_row(
        5, "ws", [change], source="api", values=DriverValues("sqlite"), stamp="now"
    )
    assert stored[7] == '["api"]'
