"""Vietnamese banks by NAPAS BIN (the 6-digit id used by NAPAS 247 and VietQR); the list itself
is the shared kernel's (`shared.banks`)."""

from __future__ import annotations


def is_bin(value: str) -> bool:
    return len(value) == 6 and value.isascii() and value.isdigit()
