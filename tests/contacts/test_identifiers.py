"""The fast path for plain email addresses agrees with the full check."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from sodate.contacts.identifiers import _PLAIN_EMAIL, normalize_email, plain_email


def _full_check(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized.casefold()
    except EmailNotValidError:
        return None


@settings(max_examples=150, deadline=None)
@given(st.from_regex(_PLAIN_EMAIL, fullmatch=True))
def test_every_address_the_fast_path_takes_passes_the_full_check_unchanged(address: str) -> None:
    if plain_email(address):
        assert _full_check(address) == address


def test_addresses_outside_the_fast_path_still_get_the_full_check() -> None:
    assert normalize_email("Taro.Yamada@Example.CO.JP") == "taro.yamada@example.co.jp"
    assert normalize_email("山田@例え.jp") == "山田@例え.jp"
    assert normalize_email("someone@host.test") is None
    assert normalize_email("a..b@example.jp") is None
    assert normalize_email("a@xn--abc.jp") is None
    assert normalize_email({"not": "text"}) is None
