"""The fast paths for plain email addresses and Japanese phone numbers agree with the full ones."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sodate.contacts.identifiers import (
    _PLAIN_EMAIL,
    _PLAIN_JP_PHONE,
    common_jp_phone,
    normalize_email,
    normalize_phone,
    plain_email,
)


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


def _phonenumbers(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_FULL_WIDTH = dict(zip("0123456789-+ ", "０１２３４５６７８９－＋　", strict=True))
# Random digits are rarely mobile numbers (`[6-9]0[1-9]…`): start some at the usual prefixes.
_PREFIXES = ["0", "+81", "+81 ", "+81-"]
_LEADS = ["90", "80", "70", "60", "50", "20", "3", "6", "45", "11", "99", "57", "120", "800"]


@st.composite
def _plain_numbers(draw: st.DrawFn) -> str:
    """Texts of the fast path's form, ASCII or partly full-width, often near real numbers."""
    if draw(st.booleans()):
        text = draw(st.from_regex(_PLAIN_JP_PHONE, fullmatch=True))
    else:
        digits = draw(st.sampled_from(_LEADS)) + draw(st.text("0123456789", min_size=6, max_size=9))
        separated = "".join(
            char + draw(st.sampled_from(["", "", "-", " "])) for char in digits[:-1]
        )
        text = draw(st.sampled_from(_PREFIXES)) + separated + digits[-1]
    wide = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(
        _FULL_WIDTH.get(char, char) if flip else char for char, flip in zip(text, wide, strict=True)
    )


@settings(max_examples=500, deadline=None)
@given(_plain_numbers())
@example("090-1234-5678")
@example("０９０－１２３４－５６７８")
@example("+81 90 1234 5678")
@example("03-1234-5678")
@example("090-0123-4567")  # not a mobile number: 0 after 090
@example("0120-123-456")  # toll free: not the fast path's
def test_the_phone_fast_path_gives_what_phonenumbers_gives(text: str) -> None:
    fast = common_jp_phone(text)
    if fast is not None:
        assert fast == _phonenumbers(text)
    assert normalize_phone(text) == _phonenumbers(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789０９-－ +＋()ー.", max_size=16))
def test_texts_near_phone_numbers_agree_with_phonenumbers(text: str) -> None:
    if text.strip().casefold() not in ("0", "-1"):  # placeholders are never identifiers
        assert normalize_phone(text) == _phonenumbers(text)


def test_common_numbers_take_the_fast_path() -> None:
    assert common_jp_phone("090-1234-5678") == "+819012345678"
    assert common_jp_phone("09012345678") == "+819012345678"
    assert common_jp_phone("０８０ １２３４ ５６７８") == "+818012345678"
    assert common_jp_phone("+81 70-1234-5678") == "+817012345678"
    assert common_jp_phone("03-1234-5678") == "+81312345678"
    assert common_jp_phone("(03) 1234-5678") is None
    assert normalize_phone("(03) 1234-5678") == "+81312345678"
