"""The dashboard's number formats, written independently of its JavaScript: 1.533; 25,4%;
212,7 tỷ đồng (and 1,533; 25.4%; 212.7 billion VND in English)."""

from __future__ import annotations


def _group(value: int, sep: str) -> str:
    return f"{value:,}".replace(",", sep)


def _tenths(tenths: int, lang: str) -> str:
    whole, tenth = divmod(abs(tenths), 10)
    text = f"{_group(whole, '.' if lang == 'vi' else ',')}{',' if lang == 'vi' else '.'}{tenth}"
    return ("-" if tenths < 0 else "") + text


def _round_tenths(numerator: int, denominator: int) -> int:
    """numerator/denominator in tenths, half up, exactly."""
    return (2 * numerator * 10 + denominator) // (2 * denominator)


def integer(value: int, lang: str = "vi") -> str:
    return _group(value, "." if lang == "vi" else ",")


def share(cashless: int, paid: int, lang: str = "vi") -> str:
    return "–" if not paid else _tenths(_round_tenths(cashless * 100, paid), lang) + "%"


def money(vnd: int, lang: str = "vi") -> str:
    if vnd >= 1_000_000_000:
        return _tenths(_round_tenths(vnd, 1_000_000_000), lang) + (
            " tỷ đồng" if lang == "vi" else " billion VND"
        )
    if vnd >= 1_000_000:
        return _tenths(_round_tenths(vnd, 1_000_000), lang) + (
            " triệu đồng" if lang == "vi" else " million VND"
        )
    return integer(vnd, lang) + (" đồng" if lang == "vi" else " VND")
