"""Column mapping and value coercion."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sodate.imports.mapping import (
    Field,
    MappingError,
    Target,
    ValueType,
    coerce,
    mapping_specs,
    parse_field,
    resolve_mapping,
)
from sodate.imports.models import ImportKind

TOKYO = ZoneInfo("Asia/Tokyo")
CONTACTS = ImportKind.CONTACTS
EVENTS = ImportKind.EVENTS


def test_default_mapping_of_japanese_and_english_headers() -> None:
    header = [
        "メールアドレス",
        "姓",
        "名",
        "セイ",
        "メイ",
        "会社名",
        "部署",
        "役職",
        "電話番号",
        "携帯電話",
        "E-Mail Address",
        "生年月日",
        "No.",
        "",
        "external:line",
        "id",
    ]
    assert mapping_specs(resolve_mapping(CONTACTS, header, {})) == [
        "email",
        "trait:lastName",
        "trait:firstName",
        "trait:lastNameKana",
        "trait:firstNameKana",
        "company",
        "trait:department",
        "trait:title",
        "phone",
        "trait:携帯電話",  # phone is taken by the first phone column
        "trait:E-Mail Address",  # not a known spelling: a trait named by the header
        "trait:birthday:date",
        "trait:No_",
        "trait:column_14",
        "external:line",
        "ignore",
    ]


def test_full_width_and_spaced_headers_match() -> None:
    fields = resolve_mapping(CONTACTS, ["ＥＭＡＩＬ", "Phone Number", "氏名（漢字）"], {})
    assert mapping_specs(fields) == ["email", "phone", "trait:name"]


def test_given_mapping_wins_and_is_checked() -> None:
    header = ["会員番号", "メール", "来場日", "備考"]
    given = {"会員番号": "external:crm", "来場日": "visited:date", "備考": "-"}
    assert mapping_specs(resolve_mapping(CONTACTS, header, given)) == [
        "external:crm",
        "email",
        "trait:visited:date",
        "ignore",
    ]
    with pytest.raises(MappingError, match="no column '会社'"):
        resolve_mapping(CONTACTS, header, {"会社": "company"})
    with pytest.raises(MappingError, match="columns 1 and 2 both map to email"):
        resolve_mapping(CONTACTS, header, {"会員番号": "email", "メール": "email"})
    with pytest.raises(MappingError, match="no column identifies"):
        resolve_mapping(CONTACTS, ["氏名", "会社名"], {})
    with pytest.raises(MappingError, match="not a field of a contacts import"):
        resolve_mapping(CONTACTS, header, {"来場日": "timestamp"})
    # A given spec that ends in `:word` names a type, in any case; a mistyped one is refused
    # rather than taken for a trait named `visited:weird`.
    typed = resolve_mapping(CONTACTS, header, {"来場日": "visited:Date"})
    assert mapping_specs(typed)[2] == "trait:visited:date"
    for spec in ("visited:weird", "trait:visited:number"):
        with pytest.raises(MappingError, match="is not a type: use one of text, int, float"):
            resolve_mapping(CONTACTS, header, {"来場日": spec})
    named = resolve_mapping(CONTACTS, header, {"来場日": "utm:source:text"})
    assert mapping_specs(named)[2] == "trait:utm:source:text"
    # Which reads back as the same field, given again or stored with the import.
    assert parse_field("trait:utm:source:text", CONTACTS, given=True) == named[2]
    visit = resolve_mapping(CONTACTS, header, {"来場日": "visit:date:text"})[2]
    assert parse_field(visit.spec, CONTACTS) == visit == Field(Target.TRAIT, "visit:date")


def test_events_need_an_event_name() -> None:
    header = ["メールアドレス", "購入日", "商品", "金額"]
    with pytest.raises(MappingError, match="no event column"):
        resolve_mapping(EVENTS, header, {})
    fields = resolve_mapping(EVENTS, header, {"金額": "amount:int"}, fixed_event="Purchase")
    assert mapping_specs(fields) == ["email", "timestamp", "property:商品", "property:amount:int"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("email", Field(Target.EMAIL)),
        ("-", Field(Target.IGNORE)),
        ("external:LINE", Field(Target.EXTERNAL, "line")),
        ("age:int", Field(Target.TRAIT, "age", ValueType.INT)),
        ("trait:email", Field(Target.TRAIT, "email")),
        ("trait:visited:date", Field(Target.TRAIT, "visited", ValueType.DATE)),
        ("utm:source", Field(Target.TRAIT, "utm:source")),
    ],
)
def test_field_specs(spec: str, field: Field) -> None:
    assert parse_field(spec, CONTACTS) == field
    assert parse_field(field.spec, CONTACTS) == field


@pytest.mark.parametrize(
    "spec", ["external:", "external:a b", "a.b", "x" * 101, "$set", "a\x00b", "a\tb"]
)
def test_bad_field_specs(spec: str) -> None:
    with pytest.raises(MappingError):
        parse_field(spec, CONTACTS)


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("1,200", ValueType.INT, 1200),
        ("￥12,800", ValueType.INT, 12800),
        ("３０００円", ValueType.INT, 3000),
        ("1.5", ValueType.FLOAT, 1.5),
        ("はい", ValueType.BOOL, True),
        ("×", ValueType.BOOL, False),
        ("FALSE", ValueType.BOOL, False),
        ("2026/3/1", ValueType.DATE, "2026-03-01"),
        ("2026年3月1日", ValueType.DATE, "2026-03-01"),
        ("２０２６－０３－０１", ValueType.DATE, "2026-03-01"),
        ("2026/03/01 0:00", ValueType.DATE, "2026-03-01"),
        ("2026/3/1 9:05", ValueType.DATETIME, "2026-03-01T09:05:00+09:00"),
        ("2026年3月1日 9時5分", ValueType.DATETIME, "2026-03-01T09:05:00+09:00"),
        ("2026-03-01T00:00:00Z", ValueType.DATETIME, "2026-03-01T00:00:00+00:00"),
        ("山田　太郎 ", ValueType.TEXT, "山田　太郎 "),
    ],
)
def test_coercion(value: str, value_type: ValueType, expected: object) -> None:
    assert coerce(value, value_type, TOKYO) == expected


@pytest.mark.parametrize(
    ("value", "value_type", "reason"),
    [
        ("1.5", ValueType.INT, "not a whole number"),
        ("abc", ValueType.FLOAT, "not a number"),
        ("nan", ValueType.FLOAT, "not a finite number"),
        ("maybe", ValueType.BOOL, "not yes/no"),
        ("2026/02/30", ValueType.DATE, "not a date"),
        ("3月1日", ValueType.DATE, "not a date"),
        ("2026/3/1 25:00", ValueType.DATETIME, "not a calendar date and time"),
    ],
)
def test_coercion_errors(value: str, value_type: ValueType, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        coerce(value, value_type, TOKYO)


def test_naive_times_are_in_the_given_zone() -> None:
    assert coerce("2026-03-01 09:00", ValueType.DATETIME, UTC) == "2026-03-01T09:00:00+00:00"
    assert datetime.fromisoformat(
        str(coerce("2026-03-01 09:00", ValueType.DATETIME, TOKYO))
    ) == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
