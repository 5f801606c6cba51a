"""Areas as reporting sees them: a commune code is read in the list it came from, and figures
for periods from July 2025 are shown on the units that replaced Vĩnh Phúc's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from shared.admin_units import AdminUnit, conversions_2025_07, find_unit, known_list_dates

# The province merged into Phú Thọ and districts were abolished on 1 July 2025.
LIST_2025_07 = date(2025, 7, 1)
FIRST_PERIOD_2025_07 = "2025-07"
PROVINCE_BEFORE = "26"  # Vĩnh Phúc
PROVINCE_AFTER = "25"  # Phú Thọ
PROVINCE_NAMES = {PROVINCE_BEFORE: "Tỉnh Vĩnh Phúc", PROVINCE_AFTER: "Tỉnh Phú Thọ"}
URBAN, RURAL, UNKNOWN = "URBAN", "RURAL", "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Area:
    """The commune-level unit a figure is counted in, with its district and province."""

    code: str
    list_date: date
    name: str
    district_code: str  # "" when the unit has no district (after July 2025) or is unknown
    district_name: str
    province_code: str  # "" when unknown
    area_type: str  # URBAN, RURAL or UNKNOWN


def list_in_force(day: date) -> date:
    """The unit list valid on `day`: the latest list published on or before it."""
    if day >= LIST_2025_07:
        return LIST_2025_07
    dates = known_list_dates()
    valid = [d for d in dates if d <= day]
    return valid[-1] if valid else dates[0]


@lru_cache(maxsize=1)
def units_2025_07() -> dict[str, Area]:
    """The units of 1 July 2025, from the official conversion table."""
    out: dict[str, Area] = {}
    for conversion in conversions_2025_07().values():
        kind_urban = conversion.new_name.startswith("Phường")
        out[conversion.new_code] = Area(
            code=conversion.new_code,
            list_date=LIST_2025_07,
            name=conversion.new_name,
            district_code="",
            district_name="",
            province_code=PROVINCE_AFTER,
            area_type=URBAN if kind_urban else RURAL,
        )
    return out


def _from_unit(unit: AdminUnit) -> Area:
    return Area(
        unit.code,
        unit.list_date,
        unit.name,
        unit.district_code,
        unit.district_name,
        unit.province_code,
        URBAN if unit.urban else RURAL,
    )


def unknown_area(code: str, list_date: date) -> Area:
    return Area(code, list_date, code, "", "", "", UNKNOWN)


@lru_cache(maxsize=4096)
def source_area(commune_code: str, list_date: date) -> Area:
    """The unit as the event names it, typed by the list it comes from."""
    effective = list_in_force(list_date)
    if effective == LIST_2025_07:
        return units_2025_07().get(commune_code) or unknown_area(commune_code, list_date)
    unit = find_unit(commune_code, effective)
    return _from_unit(unit) if unit else unknown_area(commune_code, list_date)


@lru_cache(maxsize=16384)
def reporting_area(commune_code: str, list_date: date, period: str) -> Area:
    """Where a figure of `period` is counted: the event's own unit (urban or rural by the unit type
    in its list); from July 2025, the unit it became under the 2025 conversion."""
    source = source_area(commune_code, list_date)
    if (
        period < FIRST_PERIOD_2025_07
        or source.list_date == LIST_2025_07
        or source.area_type == UNKNOWN
    ):
        return source
    conversion = conversions_2025_07().get(source.code)
    if conversion is None:
        return source
    return units_2025_07()[conversion.new_code]


def area_name(code: str, list_date: date) -> str:
    return source_area(code, list_date).name


@lru_cache(maxsize=1)
def district_names() -> dict[str, str]:
    from shared.admin_units import unit_lists

    names: dict[str, str] = {}
    for units in unit_lists().values():
        for unit in units.values():
            names.setdefault(unit.district_code, unit.district_name)
    return names
