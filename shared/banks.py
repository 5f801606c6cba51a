"""Vietnamese banks keyed by their NAPAS BIN (short names differ between sources)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Bank:
    bin: str
    short_name: str
    name: str
    swift: str


@lru_cache(maxsize=1)
def banks() -> dict[str, Bank]:
    with resources.files("shared.data").joinpath("banks.csv").open(encoding="utf-8") as handle:
        return {
            row["bin"]: Bank(row["bin"], row["short_name"], row["name"], row["swift"])
            for row in csv.DictReader(handle)
        }


def find_bank(bank_bin: str) -> Bank | None:
    return banks().get(bank_bin)
