"""Vietnamese text: names stored in NFC; compared with banks' upper-case ASCII by folding."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def nfc(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold(text: str) -> str:
    """'Nguyễn Văn Đức' -> 'NGUYEN VAN DUC': diacritics dropped, đ→d, upper case, single spaces."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return _SPACES.sub(" ", stripped).strip().upper()


def same_name(a: str, b: str) -> bool:
    return fold(a) == fold(b)


def mask_name(name: str | None) -> str | None:
    """'Nguyễn Văn Ánh' -> 'N***** V** Á**': each word's first letter, for callers without `pii:read`."""
    if not name:
        return name
    return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())
