"""Vietnamese banks by NAPAS BIN (the 6-digit id used by NAPAS 247 and VietQR)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BANKS_CSV = Path(__file__).with_name("data") / "banks.csv"


@dataclass(frozen=True, slots=True)
class BankInfo:
    bin: str
    short_name: str
    name: str
    swift: str | None


@lru_cache(maxsize=4)
def load_banks(path: Path = BANKS_CSV) -> dict[str, BankInfo]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            row["bin"].strip(): BankInfo(
                bin=row["bin"].strip(),
                short_name=row["short_name"].strip(),
                name=row["name"].strip(),
                swift=(row.get("swift") or "").strip() or None,
            )
            for row in csv.DictReader(handle)
        }


def is_bin(value: str) -> bool:
    return len(value) == 6 and value.isascii() and value.isdigit()
