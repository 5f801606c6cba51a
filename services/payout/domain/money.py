"""Amounts in whole Vietnamese đồng, read exactly from what a counterparty sends.

VND has no minor unit: an amount with a fraction, a float, a string where a number is due, a
negative or an infinite amount is refused with the reason, never rounded or truncated.
"""

from __future__ import annotations

import re
from decimal import Decimal

# Below PostgreSQL's BIGINT and far above any benefit payment.
MAX_VND = 10**15
_DECIMAL_TEXT = re.compile(r"^[0-9]{1,16}(\.[0-9]{1,6})?$")


class InvalidAmount(ValueError):
    """An amount that is not a whole, finite, non-negative number of VND."""


class FractionOfDong(InvalidAmount):
    """A well-written amount with a fraction: VND has no minor unit."""


def whole_vnd(value: object) -> int:
    """A JSON amount: an integer only (a bool, a float or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            raise InvalidAmount("a VND amount is a whole number, not a floating-point value")
        raise InvalidAmount(f"a VND amount is a JSON integer, not {type(value).__name__}")
    return _in_range(value)


def whole_vnd_text(text: str | None) -> int:
    """An amount written as decimal text (ISO 20022 `Amt`): digits with an optional all-zero
    fraction. Infinity, NaN, exponents, signs and spaces are refused."""
    if text is None or not _DECIMAL_TEXT.match(text):
        raise InvalidAmount("a VND amount is written as digits")
    value = Decimal(text)
    if value != value.to_integral_value():
        raise FractionOfDong("VND amounts are whole numbers: no fraction of a đồng")
    return _in_range(int(value))


def _in_range(value: int) -> int:
    if value < 0:
        raise InvalidAmount("a VND amount is not negative")
    if value >= MAX_VND:
        raise InvalidAmount("the VND amount is out of range")
    return value
