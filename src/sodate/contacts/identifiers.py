"""Identifiers that lead to a contact, normalized so that one person gets one key.

Placeholder values that SDKs and forms emit when nothing is known (`null`, `undefined`, `0`,
`guest`, …) are never identifiers: linking on them would merge strangers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email

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


@dataclass(frozen=True, order=True)
class IdentityKey:
    kind: str
    value: str

    @property
    def is_strong(self) -> bool:
        """A user id or external id names one person only: a contact has one value of each."""
        return self.kind == IdentityKind.USER_ID or self.kind.startswith(EXTERNAL_PREFIX)


def is_placeholder(value: str | None) -> bool:
    return value is None or value.strip().casefold() in PLACEHOLDERS


def usable_id(value: str | None) -> str | None:
    """The id, or None when it is missing or a placeholder."""
    if value is None or is_placeholder(value):
        return None
    return value.strip()


def normalize_email(value: object) -> str | None:
    """The address in a comparable form (lower case, IDNA domain), or None if it is not one.

    Checked for syntax only: no DNS lookup, so an import never waits on the network.
    """
    if not isinstance(value, str) or is_placeholder(value):
        return None
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.casefold()


def normalize_phone(value: object, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """The number in E.164 (`+81312345678`), or None if it is not a valid number."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or is_placeholder(value):
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def external_kind(id_type: str) -> str:
    return EXTERNAL_PREFIX + id_type.strip().casefold()
