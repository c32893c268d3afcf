"""The row parser checks cells itself; every row it accepts is one ContactUpsert accepts as is."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sodate.contacts.identifiers import IdentityKind, normalize_email, normalize_phone
from sodate.contacts.models import identity_key
from sodate.contacts.prepared import prepare_contact
from sodate.contacts.schemas import ContactUpsert
from sodate.imports.csvfile import Record
from sodate.imports.mapping import resolve_mapping
from sodate.imports.models import ImportKind
from sodate.imports.rows import ParsedRow, RowError, RowParser

HEADER = ["email", "phone", "user_id", "external:crm", "会社名", "company_key", "氏名", "年齢"]
TOKYO = ZoneInfo("Asia/Tokyo")
# Cells the checks accept, near their limits (the tests of rejected rows are elsewhere).
TEXT = st.one_of(
    # Decoding a file yields no surrogates but the undecodable bytes (U+DC80 to U+DCFF).
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12),
    st.sampled_from(
        [" \u3000padded\u3000 ", "ｻﾝﾌﾟﾙ  商事", "x" * 200, "y" * 300, "\x1c\x1f", "ab\udcff"]
    ),
)
EMAILS = st.sampled_from(
    [
        "taro@example.jp",
        "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
        "Taro.Yamada@Example.CO.JP",
        "山田@例え.jp",
    ]
)
PHONES = st.sampled_from(["090-1234-5678", "０９０－１２３４－５６７８", "+81 3 1234 5678"])
AGES = st.integers(-(10**30), 10**30).map(str)
ROWS = st.tuples(
    *(
        st.one_of(st.just(""), cells)
        for cells in (EMAILS, PHONES, TEXT, TEXT, TEXT, TEXT, TEXT, AGES)
    )
).map(list)


WORKSPACE = "w8k2m4q7"


def _parser(header: list[str], mapping: dict[str, str], source: str = "import") -> RowParser:
    fields = resolve_mapping(ImportKind.CONTACTS, header, mapping)
    return RowParser(
        ImportKind.CONTACTS,
        header,
        fields,
        encoding="utf-8",
        zone=TOKYO,
        workspace_id=WORKSPACE,
        source=source,
    )


def _parse(parser: RowParser, cells: list[str]) -> ParsedRow | list[RowError]:
    return parser.parse(Record(line=2, end=0, next_line=3, fields=cells))


@settings(max_examples=400, deadline=None)
@given(ROWS)
def test_every_row_the_parser_accepts_is_a_valid_upsert_unchanged(cells: list[str]) -> None:
    result = _parse(_parser(HEADER, {"年齢": "age:int"}), cells)
    if isinstance(result, ParsedRow):
        contact = result.contact._asdict()
        assert ContactUpsert(**contact).model_dump() == contact


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_a_row_carries_its_contacts_claim_and_profile_prepared_with_the_source(
    cells: list[str],
) -> None:
    # The writer takes them as its own (`upsert_contacts`' `prepared`): a wrong claim would
    # resolve the row to another person.
    result = _parse(_parser(HEADER, {"年齢": "age:int"}, source="展示会2026"), cells)
    if isinstance(result, ParsedRow):
        assert result.prepared == prepare_contact(
            result.contact, workspace_id=WORKSPACE, source="展示会2026"
        )
        claim = result.prepared.claim
        assert claim.key_hashes == tuple(
            identity_key(WORKSPACE, key.kind, key.value) for key in claim.keys
        )
        keys = dict(claim.keys)
        assert keys.get(IdentityKind.EMAIL) == normalize_email(result.contact.email)
        assert keys.get(IdentityKind.PHONE) == normalize_phone(result.contact.phone)
        assert result.prepared.profile.source == "展示会2026"


def test_names_the_schema_refuses_leave_the_rows_to_it() -> None:
    # Case folding makes 50 letters ("ﬃ") 150: longer than a key may be.
    header = ["email", "external:" + "ﬃ" * 50]
    parser = _parser(header, {})
    assert not parser.names_fit
    assert _parse(parser, ["taro@example.jp", "C-1"]) == [
        RowError(
            2,
            "external_ids." + "ffi" * 50 + ".[key]",
            None,
            "String should have at most 100 characters",
        )
    ]
    assert isinstance(_parse(_parser(["email", "external:crm"], {}), ["a@b.jp", "C-1"]), ParsedRow)
