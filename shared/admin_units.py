"""Vĩnh Phúc's administrative units, by the date of the list they come from.

New units reuse old codes, so a bare commune code is not a stable key: every code travels with
its list date. Urban/rural follows the unit type in that list (Phường and Thị trấn are urban).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources

LIST_2023 = date(2023, 5, 7)
LIST_2025 = date(2025, 1, 4)
_FILES = {
    LIST_2023: "vinh-phuc-communes-2023-05-07.csv",
    LIST_2025: "vinh-phuc-communes-2025-01-04.csv",
}
URBAN_KINDS = frozenset({"Phường", "Thị trấn"})


@dataclass(frozen=True, slots=True)
class AdminUnit:
    code: str
    name: str
    kind: str  # Phường, Thị trấn or Xã
    district_code: str
    district_name: str
    province_code: str
    list_date: date

    @property
    def urban(self) -> bool:
        return self.kind in URBAN_KINDS

    @property
    def area_type(self) -> str:
        return "URBAN" if self.urban else "RURAL"


@dataclass(frozen=True, slots=True)
class Conversion:
    """The 1 July 2025 conversion: an old unit into a new unit of Phú Thọ province."""

    old_code: str
    old_name: str
    new_code: str
    new_name: str


def _read(name: str) -> list[dict[str, str]]:
    with resources.files("shared.data").joinpath(name).open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


@lru_cache(maxsize=1)
def unit_lists() -> dict[date, dict[str, AdminUnit]]:
    lists: dict[date, dict[str, AdminUnit]] = {}
    for list_date, filename in _FILES.items():
        units = {}
        for row in _read(filename):
            unit = AdminUnit(
                code=row["Mã PX"].strip(),
                name=row["Phường Xã"].strip(),
                kind=row["Cấp"].strip(),
                district_code=row["Mã QH"].strip(),
                district_name=row["Quận Huyện"].strip(),
                province_code=row["Mã TP"].strip(),
                list_date=list_date,
            )
            units[unit.code] = unit
        lists[list_date] = units
    return lists


def known_list_dates() -> tuple[date, ...]:
    return tuple(sorted(unit_lists()))


def find_unit(code: str, list_date: date) -> AdminUnit | None:
    """The unit with `code` in the list of `list_date`, or None if that list has no such code."""
    return unit_lists().get(list_date, {}).get(code)


def units(list_date: date = LIST_2023) -> list[AdminUnit]:
    return sorted(unit_lists()[list_date].values(), key=lambda u: (u.district_code, u.code))


@lru_cache(maxsize=1)
def conversions_2025_07() -> dict[str, Conversion]:
    """Old (2025-01-04 list) code -> the unit it became on 1 July 2025."""
    table = {}
    for row in _read("vinh-phuc-2025-07-conversion.csv"):
        conversion = Conversion(
            old_code=row["Mã Xã cũ"].strip(),
            old_name=row["Tên Xã cũ"].strip(),
            new_code=row["Mã Xã mới"].strip(),
            new_name=row["Tên Xã mới"].strip(),
        )
        table[conversion.old_code] = conversion
    return table
