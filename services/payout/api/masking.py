"""Personal data in responses: account numbers and names are masked unless the caller holds
`pii:read`."""

from __future__ import annotations

from typing import Any

from shared.vn_text import mask_name

PII_SCOPE = "pii:read"


def mask_account(number: str | None) -> str | None:
    if not number:
        return number
    keep = 4 if len(number) > 6 else 2
    return "*" * (len(number) - keep) + number[-keep:]


def masked(
    row: dict[str, Any],
    can_see: bool,
    accounts: tuple[str, ...] = ("account_number",),
    names: tuple[str, ...] = (),
) -> dict[str, Any]:
    if can_see:
        return row
    out = dict(row)
    for key in accounts:
        if key in out:
            out[key] = mask_account(out[key])
    for key in names:
        if key in out:
            out[key] = mask_name(out[key])
    return out
