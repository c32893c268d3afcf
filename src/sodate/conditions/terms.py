"""What the words of the condition language mean: shared by the SQL and in-memory evaluators.

Both evaluators ask this module what an attribute path names, how text is folded, what a date
value means at an instant, and which local date each time zone has. Keeping those answers in
one place is what lets the two agree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from sodate.clock import ClockError, parse_duration


class ValueKind(StrEnum):
    """What an attribute holds, which decides the operators it takes."""

    TEXT = "text"
    """A text column (email, phone, user id, company name): absent or text."""
    TIME = "time"
    """A timestamp column (created, first seen, last seen): absent or an instant."""
    JSON = "json"
    """A value in a JSON document (a trait, a company trait, an event property)."""


class Source(StrEnum):
    CONTACT = "contact"
    TRAITS = "traits"
    COMPANY = "company"
    COMPANY_TRAITS = "company_traits"


CONTACT_FIELDS: dict[str, ValueKind] = {
    "email": ValueKind.TEXT,
    "phone": ValueKind.TEXT,
    "user_id": ValueKind.TEXT,
    "created_at": ValueKind.TIME,
    "first_seen_at": ValueKind.TIME,
    "last_seen_at": ValueKind.TIME,
}
COMPANY_FIELDS: dict[str, ValueKind] = {"name": ValueKind.TEXT}
COMPANY_PREFIX = "company"
TIME_ZONE_TRAIT = "timezone"
"""The trait that names a contact's own IANA time zone; without a valid one, the workspace's."""
MAX_PATH_DEPTH = 8


@dataclass(frozen=True)
class AttributePath:
    """Where an `attr` reads: a column, or a path into a JSON document."""

    source: Source
    path: tuple[str, ...]
    kind: ValueKind

    @property
    def column(self) -> str:
        return self.path[0]


@lru_cache(maxsize=4096)
def attribute_path(text: str) -> AttributePath:
    """`email` and the other contact fields, `company.name`, `company.<trait path>`, or a trait
    path (`job_title`, `address.city`). Raises ValueError for a malformed path."""
    parts = split_path(text)
    if len(parts) == 1 and parts[0] in CONTACT_FIELDS:
        return AttributePath(Source.CONTACT, parts, CONTACT_FIELDS[parts[0]])
    if parts[0] == COMPANY_PREFIX and len(parts) > 1:
        rest = parts[1:]
        if len(rest) == 1 and rest[0] in COMPANY_FIELDS:
            return AttributePath(Source.COMPANY, rest, COMPANY_FIELDS[rest[0]])
        return AttributePath(Source.COMPANY_TRAITS, rest, ValueKind.JSON)
    return AttributePath(Source.TRAITS, parts, ValueKind.JSON)


_UNADDRESSABLE = re.compile(r'["\\$\x00-\x1f]')
"""Characters SQLite's JSON paths cannot address in a key (its stored text escapes them), and
`$`, which begins a JSON path."""


@lru_cache(maxsize=4096)
def split_path(text: str) -> tuple[str, ...]:
    parts = tuple(text.split("."))
    if any(not part.strip() for part in parts):
        raise ValueError("a path is names separated by single dots, e.g. address.city")
    if _UNADDRESSABLE.search(text):
        raise ValueError('names in a path may not contain $, ", \\ or control characters')
    if len(parts) > MAX_PATH_DEPTH:
        raise ValueError(f"a path has at most {MAX_PATH_DEPTH} parts")
    return parts


def exact_number(value: int | float) -> Decimal:
    """Numbers compare as the decimals their JSON text spells, as PostgreSQL's numeric does."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Text as comparisons see it: Latin capitals A–Z lowered, everything else as it is.

    Only ASCII is folded because that is what both databases fold alike (SQLite's `lower`,
    PostgreSQL's `lower` under the "C" collation); Japanese text has no case. ASCII text takes
    `str.lower` (in C, and the same there), which is several times faster than a translation.
    """
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
"""A JSON text is a date when it starts like 2026-04-01; its first ten characters are the date."""


def date_text(value: object) -> str | None:
    if isinstance(value, str) and DATE_TEXT.match(value):
        return value[:10]
    return None


_RELATIVE = re.compile(r"[+-]\s*\S+")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class DateValue:
    """A date in a condition: an absolute ISO date or time, or an offset from now (`-30d`)."""

    offset: timedelta | None = None
    day: date | None = None
    """An absolute date without a time."""
    instant: datetime | None = None
    """An absolute time; naive ones are read in the workspace's time zone."""

    def at(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The instant this value names, for timestamp columns."""
        if self.offset is not None:
            return now + self.offset
        if self.day is not None:
            return datetime.combine(self.day, time(0), zone).astimezone(UTC)
        assert self.instant is not None
        instant = self.instant if self.instant.tzinfo else self.instant.replace(tzinfo=zone)
        return instant.astimezone(UTC)

    def absolute_day(self) -> str | None:
        """The calendar date of an absolute value, as written; None for an offset."""
        if self.day is not None:
            return self.day.isoformat()
        if self.instant is not None:
            return self.instant.date().isoformat()
        return None


MAX_SPAN = timedelta(days=36_500)
"""The longest window or offset from now a condition may name (about a hundred years): with
absolute dates kept within `YEARS`, no instant a condition names can fall outside the
calendar, whenever it is evaluated."""
YEARS = range(1000, 9001)


@lru_cache(maxsize=4096)
def parse_date_value(text: str) -> DateValue:
    """`2026-04-01`, `2026-04-01T09:00:00+09:00`, or a signed offset such as `-30d`, `+2w`."""
    value = _date_value(text.strip())
    if value is None:
        raise ValueError(
            f"{text!r} is not a date: use an ISO date or time (2026-04-01,"
            " 2026-04-01T09:00+09:00) or an offset from now (-30d, +2w, -12h)"
        )
    if value.offset is not None and abs(value.offset) > MAX_SPAN:
        raise ValueError(f"{text!r} is too far from now: at most 36500d (about 100 years)")
    moment = value.day or value.instant
    if moment is not None and moment.year not in YEARS:
        raise ValueError(f"{text!r} is out of range: use a year from 1000 to 9000")
    return value


def _date_value(text: str) -> DateValue | None:
    try:
        if _RELATIVE.fullmatch(text):
            sign = -1 if text[0] == "-" else 1
            return DateValue(offset=sign * _duration(text[1:]))
        if ISO_DATE.fullmatch(text):
            return DateValue(day=date.fromisoformat(text))
        if ISO_DATE.match(text):
            return DateValue(instant=datetime.fromisoformat(text))
    except (ClockError, ValueError):
        pass
    return None


def _duration(text: str) -> timedelta:
    """`parse_duration`, with one too long for a timedelta taken as twice `MAX_SPAN`: callers
    refuse it as too long, not with an overflow."""
    try:
        return parse_duration(text)
    except OverflowError:
        return MAX_SPAN * 2


@lru_cache(maxsize=4096)
def parse_positive_duration(text: str) -> timedelta:
    try:
        duration = _duration(text)
    except ClockError:
        duration = timedelta(0)
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} is not a duration: use e.g. 30d, 12h, 2w, 90m")
    if duration > MAX_SPAN:
        raise ValueError(f"{text!r} is too long: at most 36500d (about 100 years)")
    return duration


_DAYS = re.compile(r"[+-]?[0-9]{1,3}d")


@lru_cache(maxsize=4096)
def parse_day_offset(text: str) -> int:
    """The offset of an `anniversary`: whole days, `+3d` (in three days) or `-1d` (yesterday)."""
    if not _DAYS.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a day offset: use e.g. 0d, +3d, -1d (up to 999 days)")
    return int(text.strip()[:-1])


def month_days(day: date) -> tuple[str, ...]:
    """The `MM-DD` texts whose anniversary falls on `day`: 29 February's falls on 28 February
    in years that have no 29th."""
    text = day.strftime("%m-%d")
    if text == "02-28" and not _is_leap(day.year):
        return (text, "02-29")
    return (text,)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def contact_zone(traits: object, default: ZoneInfo) -> ZoneInfo:
    """The contact's own time zone (a known IANA name in the `timezone` trait), else `default`."""
    name = traits.get(TIME_ZONE_TRAIT) if isinstance(traits, dict) else None
    if isinstance(name, str) and name in known_zones():
        return ZoneInfo(name)
    return default


def local_dates(instant: datetime, default: ZoneInfo) -> tuple[date, dict[date, list[str]]]:
    """The local date at `instant` in the default zone, and every other date any known zone has
    then, with the zones that have it: at most three dates at any instant."""
    default_day = instant.astimezone(default).date()
    others: dict[date, list[str]] = defaultdict(list)
    for name in sorted(known_zones()):
        day = instant.astimezone(ZoneInfo(name)).date()
        if day != default_day:
            others[day].append(name)
    return default_day, dict(others)
