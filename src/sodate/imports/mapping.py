"""Column mapping: which field each CSV column feeds, and how its text becomes a value.

A field is written as a short spec (README.md lists them): `email`, `phone`, `user_id`,
`external:<type>`, `company`, `company_key`, `event`, `timestamp`, `ignore`, or a trait
(contacts) / property (events) name with an optional type: `age:int`, `trait:visited:date`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum

from sodate.imports.models import ImportKind

MAX_NAME = 100
MAX_ID_TYPE = 50
_NOT_IN_NAMES = re.compile(r"[.$\x00-\x1f\x7f]")


class MappingError(Exception):
    """The mapping cannot work for this file; the message says which column and why."""


class Target(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    USER_ID = "user_id"
    EXTERNAL = "external"
    COMPANY = "company"
    COMPANY_KEY = "company_key"
    EVENT = "event"
    TIMESTAMP = "timestamp"
    TRAIT = "trait"
    PROPERTY = "property"
    IGNORE = "ignore"


class ValueType(StrEnum):
    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"


IDENTIFIERS = frozenset({Target.EMAIL, Target.PHONE, Target.USER_ID, Target.EXTERNAL})
TARGETS = {
    ImportKind.CONTACTS: IDENTIFIERS | {Target.COMPANY, Target.COMPANY_KEY, Target.TRAIT},
    ImportKind.EVENTS: IDENTIFIERS | {Target.EVENT, Target.TIMESTAMP, Target.PROPERTY},
}
NAMED = frozenset({Target.TRAIT, Target.PROPERTY, Target.EXTERNAL})
BARE_TARGET = {ImportKind.CONTACTS: Target.TRAIT, ImportKind.EVENTS: Target.PROPERTY}


@dataclass(frozen=True)
class Field:
    target: Target
    name: str = ""
    """The trait or property name, or the type of an external id."""
    type: ValueType = ValueType.TEXT

    @property
    def spec(self) -> str:
        if self.target is Target.EXTERNAL:
            return f"external:{self.name}"
        if self.target in (Target.TRAIT, Target.PROPERTY):
            # A name with a `:` in it always ends with its type, so the spec reads back as is.
            plain = self.type is ValueType.TEXT and ":" not in self.name
            typed = "" if plain else f":{self.type.value}"
            return f"{self.target.value}:{self.name}{typed}"
        return self.target.value

    @property
    def key(self) -> tuple[Target, str]:
        """Two columns may not feed the same key."""
        return (self.target, self.name)


def parse_field(spec: str, kind: ImportKind, *, given: bool = False) -> Field:
    """The field a spec names. A spec the user `given` (`--map`, `mapping=`) that ends in
    `:word` must name a type (in any case): `amount:number` is a mistake to point out, not a
    trait of that name. A header, or a spec stored with an import, keeps such a name whole."""
    text = spec.strip()
    if text in ("", "-"):
        return Field(Target.IGNORE)
    prefix, _, rest = text.partition(":")
    if prefix == "external":
        name = rest.strip()
        if not name or len(name) > MAX_ID_TYPE or not re.fullmatch(r"[\w-]+", name):
            raise MappingError(f"{spec!r}: an external id type is letters, digits, _ or -")
        return _allowed(Field(Target.EXTERNAL, name.casefold()), kind, spec)
    if not rest and prefix in Target.__members__.values() and prefix not in NAMED:
        return _allowed(Field(Target(prefix)), kind, spec)
    target = BARE_TARGET[kind]
    if prefix in (Target.TRAIT, Target.PROPERTY) and rest:
        target, text = Target(prefix), rest
    name, value_type = text, ValueType.TEXT
    head, _, last = text.rpartition(":")
    if head and last in ValueType.__members__.values():
        name, value_type = head, ValueType(last)
    elif head and given:
        if last.strip().casefold() not in ValueType.__members__.values():
            types = ", ".join(ValueType.__members__.values())
            raise MappingError(
                f"{spec!r}: {last!r} is not a type: use one of {types}"
                f" (a name with ':' in it ends with its type: {text}:text)"
            )
        name, value_type = head, ValueType(last.strip().casefold())
    return _allowed(Field(target, _checked_name(name.strip(), spec), value_type), kind, spec)


def _checked_name(name: str, spec: str) -> str:
    if not name or len(name) > MAX_NAME or _NOT_IN_NAMES.search(name):
        raise MappingError(
            f"{spec!r}: a name is 1 to {MAX_NAME} characters, without . $ or control characters"
        )
    return name


def _allowed(field: Field, kind: ImportKind, spec: str) -> Field:
    if field.target is not Target.IGNORE and field.target not in TARGETS[kind]:
        raise MappingError(f"{spec!r} is not a field of a {kind.value} import")
    return field


def header_key(header: str) -> str:
    """How a header is compared with the default names: width, case, spaces and marks aside."""
    return re.sub(r"[\s_\-・()\[\]]", "", unicodedata.normalize("NFKC", header).casefold())


def _aliases(spec: str, *headers: str) -> dict[str, str]:
    return {header_key(header): spec for header in headers}


COMMON_DEFAULTS = {
    **_aliases("email", "email", "e-mail", "mail", "mail address", "メールアドレス", "メール"),
    **_aliases("email", "Eメール", "Eメールアドレス", "電子メール"),
    **_aliases("phone", "phone", "phone number", "tel", "telephone", "mobile", "電話番号"),
    **_aliases("phone", "電話", "携帯電話", "携帯電話番号", "携帯番号", "携帯"),
    **_aliases("user_id", "user_id", "userid", "user id", "会員ID", "ユーザーID"),
}
CONTACT_DEFAULTS = {
    **COMMON_DEFAULTS,
    **_aliases("company", "company", "company name", "organization", "会社名", "会社"),
    **_aliases("company", "企業名", "法人名", "勤務先"),
    **_aliases("company_key", "company_key", "group_id"),
    **_aliases("trait:name", "name", "full name", "氏名", "名前", "お名前", "氏名(漢字)"),
    **_aliases("trait:lastName", "last name", "lastname", "surname", "family name", "姓"),
    **_aliases("trait:lastName", "苗字", "名字"),
    **_aliases("trait:firstName", "first name", "firstname", "given name", "名"),
    **_aliases("trait:lastNameKana", "姓(カナ)", "姓カナ", "姓(フリガナ)", "セイ", "せい"),
    **_aliases("trait:firstNameKana", "名(カナ)", "名カナ", "名(フリガナ)", "メイ", "めい"),
    **_aliases("trait:nameKana", "フリガナ", "ふりがな", "氏名(カナ)", "氏名(フリガナ)"),
    **_aliases("trait:department", "department", "dept", "部署", "部署名", "部門"),
    **_aliases("trait:title", "title", "job title", "position", "役職", "役職名", "肩書き"),
    **_aliases("trait:postalCode", "postal code", "zip", "zip code", "郵便番号"),
    **_aliases("trait:prefecture", "prefecture", "都道府県"),
    **_aliases("trait:address", "address", "住所"),
    **_aliases("trait:industry", "industry", "業種"),
    **_aliases("trait:website", "website", "url", "ホームページ"),
    **_aliases("trait:gender", "gender", "性別"),
    **_aliases("trait:birthday:date", "birthday", "date of birth", "生年月日", "誕生日"),
    # The columns of Sodate's own export that are not profile data: a round trip ignores them.
    **_aliases("ignore", "id", "display_name", "sources", "created_at", "updated_at"),
    **_aliases("ignore", "first_seen_at", "last_seen_at"),
}
EVENT_DEFAULTS = {
    **COMMON_DEFAULTS,
    **_aliases("event", "event", "event name", "イベント", "イベント名"),
    **_aliases("timestamp", "timestamp", "time", "date", "datetime", "日時", "日付"),
    **_aliases("timestamp", "購入日", "購入日時", "回答日", "回答日時", "来店日", "来店日時"),
}
DEFAULTS = {ImportKind.CONTACTS: CONTACT_DEFAULTS, ImportKind.EVENTS: EVENT_DEFAULTS}


def resolve_mapping(
    kind: ImportKind,
    header: Sequence[str],
    given: Mapping[str, str],
    *,
    fixed_event: str | None = None,
) -> list[Field]:
    """The field of every column: as given by header name, else by the default names.

    A default never maps a second column to a field another column already feeds (the
    first column wins); that column becomes a trait or property named by its header.
    """
    unknown = sorted(set(given) - set(header))
    if unknown:
        raise MappingError(
            f"the file has no column {unknown[0]!r}; its columns are: {', '.join(header)}"
        )
    explicit = {name: parse_field(spec, kind, given=True) for name, spec in given.items()}
    fields: list[Field | None] = [explicit.get(name) for name in header]
    taken: dict[tuple[Target, str], int] = {}
    for index, field in enumerate(fields):
        if field is not None and field.target is not Target.IGNORE:
            if field.key in taken:
                raise MappingError(
                    f"columns {taken[field.key] + 1} and {index + 1} both map to {field.spec}"
                )
            taken[field.key] = index
    for index, name in enumerate(header):
        if fields[index] is None:
            field = _default(kind, name, index)
            if field.key in taken:
                field = Field(BARE_TARGET[kind], _fallback_name(name, index))
            while field.key in taken:
                field = Field(field.target, f"{field.name}_{index + 1}"[-MAX_NAME:])
            if field.target is not Target.IGNORE:
                taken[field.key] = index
            fields[index] = field
    resolved = [field for field in fields if field is not None]
    _check_complete(kind, resolved, fixed_event)
    return resolved


def _default(kind: ImportKind, name: str, index: int) -> Field:
    if name.startswith(("external:", "trait:", "property:")):
        try:  # a header written as a field spec, as Sodate's own export writes them
            return parse_field(name, kind)
        except MappingError:
            pass
    key = header_key(name)
    spec = DEFAULTS[kind].get(key)
    if spec is not None:
        return parse_field(spec, kind)
    return Field(BARE_TARGET[kind], _fallback_name(name, index))


def _fallback_name(header: str, index: int) -> str:
    name = _NOT_IN_NAMES.sub("_", header.strip())[:MAX_NAME]
    return name or f"column_{index + 1}"


def _check_complete(kind: ImportKind, fields: Sequence[Field], fixed_event: str | None) -> None:
    targets = {field.target for field in fields}
    if not targets & IDENTIFIERS:
        raise MappingError(
            "no column identifies the contact: map one to email, phone, user_id or "
            "external:<type> (e.g. --map 'メール=email')"
        )
    if kind is ImportKind.EVENTS and Target.EVENT not in targets and not fixed_event:
        raise MappingError("no event column: map one to `event`, or name the event for all rows")


def mapping_specs(fields: Sequence[Field]) -> list[str]:
    return [field.spec for field in fields]


def fields_from_specs(specs: Sequence[str], kind: ImportKind) -> list[Field]:
    return [parse_field(spec, kind) for spec in specs]


# --- values -----------------------------------------------------------------------------------

EMPTY_MARKERS = frozenset({"", "-", "ー", "―", "—", "–", "‐"})
"""A cell holding only a dash is empty: forms and business-card exports write one for none."""
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on", "はい", "有", "あり", "○", "◯", "✓"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off", "いいえ", "無", "なし", "×", "✗"})
_NUMBER_NOISE = re.compile(r"[,_\s¥$円]")
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"(\d{1,2})[:時](\d{1,2})(?:[:分](?:(\d{1,2})(?:\.(\d{1,6}))?秒?)?)?")


def coerce(value: str, value_type: ValueType, zone: tzinfo) -> object:
    """The typed value of a non-empty cell; ValueError with the reason if it is not one."""
    if value_type is ValueType.TEXT:
        return value
    text = unicodedata.normalize("NFKC", value).strip()
    if value_type is ValueType.INT:
        try:
            return int(_NUMBER_NOISE.sub("", text))
        except ValueError:
            raise ValueError("not a whole number") from None
    if value_type is ValueType.FLOAT:
        try:
            number = float(_NUMBER_NOISE.sub("", text))
        except ValueError:
            raise ValueError("not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return number
    if value_type is ValueType.BOOL:
        word = text.casefold()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError("not yes/no (true, false, 1, 0, はい, いいえ, ○, ×)")
    if value_type is ValueType.DATE:
        return parse_date(text).isoformat()
    return parse_datetime(text, zone).isoformat()


def parse_date(text: str) -> date:
    """ISO 8601, YYYY/M/D, YYYY.M.D or YYYY年M月D日; a time after the date is ignored."""
    match = _DATE.fullmatch(text)
    try:
        return (
            date(int(match[1]), int(match[2]), int(match[3])) if match else date.fromisoformat(text)
        )
    except ValueError:
        pass
    try:
        return parse_datetime(text, UTC).date()
    except ValueError:
        raise ValueError("not a date (YYYY-MM-DD)") from None


def parse_datetime(text: str, zone: tzinfo) -> datetime:
    """An ISO 8601 instant, or a date with an optional time; without an offset, in `zone`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _parse_local(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def _parse_local(text: str) -> datetime:
    match = _DATE.match(text) or _COMPACT_DATE.fullmatch(text)
    if match is None:
        raise ValueError("not a date and time (YYYY-MM-DD HH:MM)")
    rest = text[match.end() :].strip()
    clock = _TIME.fullmatch(rest) if rest else None
    if rest and clock is None:
        raise ValueError("not a date and time (YYYY-MM-DD HH:MM)")
    hour, minute, second, fraction = (
        (clock[1], clock[2], clock[3] or "0", clock[4] or "0") if clock else ("0", "0", "0", "0")
    )
    try:
        return datetime(  # noqa: DTZ001 - the caller attaches the zone
            int(match[1]),
            int(match[2]),
            int(match[3]),
            int(hour),
            int(minute),
            int(second),
            int(fraction.ljust(6, "0")),
        )
    except ValueError:
        raise ValueError("not a calendar date and time") from None
