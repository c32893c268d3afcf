"""Identifiers that lead to a contact, normalized so that one person gets one key.

Placeholder values that SDKs and forms emit when nothing is known (`null`, `undefined`, `0`,
`guest`, …) are never identifiers: linking on them would merge strangers.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import NamedTuple

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

DEFAULT_PHONE_REGION = "JP"

PLACEHOLDERS = frozenset(
    {
        "",
        "null",
        "nil",
        "none",
        "undefined",
        "nan",
        "0",
        "-1",
        "anonymous",
        "anon",
        "guest",
        "unknown",
        "n/a",
        "na",
        "true",
        "false",
        "[object object]",
        "00000000-0000-0000-0000-000000000000",
    }
)


class IdentityKind(StrEnum):
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    EMAIL = "email"
    PHONE = "phone"


EXTERNAL_PREFIX = "external:"


class IdentityKey(NamedTuple):
    """A kind and a value; a tuple, because batches hash and compare hundreds of thousands."""

    kind: str
    value: str

    @property
    def is_strong(self) -> bool:
        """A user id or external id names one person only: a contact has one value of each."""
        return self.kind == _USER_ID or self.kind.startswith(EXTERNAL_PREFIX)


_USER_ID = IdentityKind.USER_ID.value  # looked up once: resolution asks for every key


def is_placeholder(value: str | None) -> bool:
    return value is None or value.strip().casefold() in PLACEHOLDERS


def usable_id(value: str | None) -> str | None:
    """The id, or None when it is missing or a placeholder."""
    if value is None or is_placeholder(value):
        return None
    return value.strip()


# Most addresses are plain ASCII; for those the full check (about 60 µs) is replaced by this
# pattern, a strict subset of what email-validator accepts (a property test keeps them agreeing).
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]{1,64}(?:\.[a-z0-9_+-]{1,64})*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"[a-z]{2,24}"
)
_SPECIAL_USE_SUFFIXES = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)
IDENTIFIER_CACHE_SIZE = 65_536


# Normalized values by the text they came from. Batches repeat the same identifiers (an
# identify's email in resolution, then in the profile). Plain dicts, emptied when full: a
# lookup costs a fraction of an lru_cache call, and every entry is what the function returns.
_EMAILS: dict[str, str | None] = {}
_PHONES: dict[str, str | None] = {}
"""Phone numbers read in the default region, the only one batches use."""


def _remember(cache: dict[str, str | None], text: str, normalized: str | None) -> None:
    if len(cache) >= IDENTIFIER_CACHE_SIZE:
        cache.clear()
    cache[text] = normalized


def normalize_email(value: object) -> str | None:
    """The address in a comparable form (lower case, IDNA domain), or None if it is not one.

    Checked for syntax only: no DNS lookup, so an import never waits on the network.
    """
    if not isinstance(value, str):
        return None
    try:
        return _EMAILS[value]
    except KeyError:
        normalized = _normalize_email_text(value)
    _remember(_EMAILS, value, normalized)
    return normalized


def width_folded(text: str) -> str:
    """Full-width letters, digits and marks as their ASCII forms (NFKC): `ｔａｒｏ＠…` and
    `０９０…` are what Japanese forms and keyboards often give."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _normalize_email_text(value: str) -> str | None:
    value = width_folded(value)
    if is_placeholder(value):
        return None
    candidate = value.strip().casefold()
    if plain_email(candidate):
        return candidate
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.casefold()


def plain_email(candidate: str) -> bool:
    """Whether a lower-case address is plain enough to need no further check. (The pattern
    holds each label of the domain to 63 characters.)"""
    if len(candidate) > 254 or not _PLAIN_EMAIL.fullmatch(candidate):
        return False
    local, _, domain = candidate.partition("@")
    return len(local) <= 64 and "--" not in domain and not domain.endswith(_SPECIAL_USE_SUFFIXES)


class _NumberKind(NamedTuple):
    """One kind of number of a region's metadata, matched as phonenumbers matches it."""

    pattern: re.Pattern[str]
    lengths: frozenset[int]

    def matches(self, national: str) -> bool:
        return (not self.lengths or len(national) in self.lengths) and bool(
            self.pattern.fullmatch(national)
        )


def _number_kinds(region: str, *names: str) -> list[_NumberKind]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise LookupError(f"phonenumbers has no metadata for {region}")
    kinds = []
    for name in names:
        desc = getattr(metadata, name)
        kinds.append(
            _NumberKind(re.compile(desc.national_number_pattern), frozenset(desc.possible_length))
        )
    return kinds


# Most numbers are Japanese mobile or fixed-line numbers in a plain form (`090-1234-5678`,
# `03 1234 5678`, `+81 90 1234 5678`, full-width too). phonenumbers takes some 75 µs for
# one; for these, its own metadata decides the same in a few: the national number is what
# follows the national prefix 0 or the country code, and it is valid when it fits the
# region's description and the fixed-line or mobile one. Anything else goes to phonenumbers
# (a property test keeps the two agreeing).
_JP_GENERAL, *_JP_COMMON_KINDS = _number_kinds(
    DEFAULT_PHONE_REGION, "general_desc", "fixed_line", "mobile"
)
_PLAIN_JP_PHONE = re.compile(r"(?:0|\+81[- ]?)[1-9](?:[- ]?[0-9]){8,9}")
_HALF_WIDTH = str.maketrans("０１２３４５６７８９－＋　", "0123456789-+ ")


def common_jp_phone(value: str) -> str | None:
    """The E.164 form of a plain Japanese fixed-line or mobile number; None for anything else."""
    text = value if value.isascii() else value.translate(_HALF_WIDTH)
    if not _PLAIN_JP_PHONE.fullmatch(text):
        return None
    digits = text.replace("-", "").replace(" ", "")
    national = digits[1:] if digits[0] == "0" else digits[3:]
    if _JP_GENERAL.matches(national) and any(kind.matches(national) for kind in _JP_COMMON_KINDS):
        return "+81" + national
    return None


def normalize_phone(value: object, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """The number in E.164 (`+81312345678`), or None if it is not a valid number."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    if region != DEFAULT_PHONE_REGION:
        return _normalize_phone_text(value, region)
    try:
        return _PHONES[value]
    except KeyError:
        normalized = _normalize_phone_text(value, region)
    _remember(_PHONES, value, normalized)
    return normalized


def _normalize_phone_text(value: str, region: str) -> str | None:
    value = width_folded(value)
    if is_placeholder(value):
        return None
    if region == DEFAULT_PHONE_REGION and (common := common_jp_phone(value)):
        return common
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def external_kind(id_type: str) -> str:
    return EXTERNAL_PREFIX + id_type.strip().casefold()
