"""Account verification: the bank's holder name against the person the account should belong
to. Banks keep names upper case without diacritics, so both sides are folded (đ→d, case)."""

from __future__ import annotations

from typing import Literal

from shared.vn_text import fold

VerificationResult = Literal["VERIFIED", "NO_SUCH_ACCOUNT", "NAME_MISMATCH", "BANK_NOT_SUPPORTED"]


def names_match(bank_name: str | None, expected_name: str) -> bool:
    return bank_name is not None and fold(bank_name) == fold(expected_name) != ""


def verdict(inquiry_status: str, bank_name: str | None, expected_name: str) -> VerificationResult:
    if inquiry_status == "BANK_NOT_SUPPORTED":
        return "BANK_NOT_SUPPORTED"
    if inquiry_status == "NOT_FOUND":
        return "NO_SUCH_ACCOUNT"
    return "VERIFIED" if names_match(bank_name, expected_name) else "NAME_MISMATCH"
