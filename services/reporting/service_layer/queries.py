"""What the API and the exports answer: labelled breakdowns whose rows add up to their total, time
series, key figures and progress against targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from services.reporting.adapters.repository import ReadRepository, TargetRepository
from services.reporting.adapters.repository.common import Db
from services.reporting.adapters.repository.reads import DIMENSION_COLUMNS, Filters
from services.reporting.domain import labels
from services.reporting.domain.areas import PROVINCE_NAMES, district_names, source_area
from services.reporting.domain.disclosure import cell_size, is_small, suppressed_cells
from services.reporting.domain.envelopes import EnvelopeUse, envelope_use, summarise
from services.reporting.domain.figures import Figures
from services.reporting.domain.targets import PeriodShare, Progress, Target, evaluate
from shared.periods import between, last_complete_period


@dataclass(frozen=True, slots=True)
class Row:
    key: dict[str, Any]
    code: str
    name_vi: str
    name_en: str
    figures: Figures
    area_type: str | None = None
    suppressed: bool = False
    district_code: str | None = None  # communes: the district whose total is published too


@dataclass(frozen=True, slots=True)
class Breakdown:
    dimension: str
    filters: Filters
    rows: list[Row]
    total: Figures  # the true total, whatever the rows show
    total_suppressed: bool = False
    suppression: bool = False  # whether small cells are hidden for this reader


def suppress_breakdown(breakdown: Breakdown) -> Breakdown:
    """The breakdown as a reader without the detail scope sees it: small cells hidden, and with
    them the cells that would let one be recovered from a published total (the total row, the
    commune's district, its area type, the district's province)."""
    rows = breakdown.rows
    groups: list[list[int]] = [list(range(len(rows)))]
    for attribute in ("district_code", "area_type") if breakdown.dimension == "commune" else ():
        by_value: dict[str | None, list[int]] = {}
        for index, row in enumerate(rows):
            by_value.setdefault(getattr(row, attribute), []).append(index)
        groups.extend(by_value.values())
    if breakdown.dimension == "district":
        by_province: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            by_province.setdefault(str(row.key.get("province_code")), []).append(index)
        groups.extend(by_province.values())
    hidden = suppressed_cells([cell_size(r.figures) for r in rows], groups)
    return replace(
        breakdown,
        rows=[replace(r, suppressed=i in hidden) for i, r in enumerate(rows)],
        total_suppressed=is_small(breakdown.total),
        suppression=True,
    )


def suppress_series(result: dict[str, Any]) -> dict[str, Any]:
    """A time series as a reader without the detail scope sees it: each point is a cell; the points
    of one period add up to that period's figures and those of one series to its breakdown row,
    both published elsewhere, so both are groups."""
    cells: list[tuple[int, int]] = []
    sizes: list[int] = []
    for s, entry in enumerate(result["series"]):
        for p, (_, figures) in enumerate(entry["points"]):
            cells.append((s, p))
            sizes.append(cell_size(figures))
    by_series: dict[int, list[int]] = {}
    by_period: dict[int, list[int]] = {}
    for index, (s, p) in enumerate(cells):
        by_series.setdefault(s, []).append(index)
        by_period.setdefault(p, []).append(index)
    hidden = suppressed_cells(sizes, [*by_series.values(), *by_period.values()])
    series = [dict(entry, hidden=set()) for entry in result["series"]]
    for index in hidden:
        s, p = cells[index]
        series[s]["hidden"].add(series[s]["points"][p][0])
    return {**result, "series": series, "suppression": True}


def _label(dimension: str, key: tuple) -> tuple[dict[str, Any], str, str, str, str | None]:
    """(key fields, code, Vietnamese name, English name, area type) of one group."""
    if dimension == "province":
        (province,) = key
        vi = PROVINCE_NAMES.get(province, labels.UNKNOWN_PROVINCE[0])
        en = PROVINCE_NAMES.get(province, labels.UNKNOWN_PROVINCE[1])
        return {"province_code": province}, province, vi, en, None
    if dimension == "district":
        province, district = key
        if district:
            name = district_names().get(district, district)
            return (
                {"province_code": province, "district_code": district},
                district,
                name,
                name,
                None,
            )
        vi, en = labels.NO_DISTRICT
        return {"province_code": province, "district_code": district}, district, vi, en, None
    if dimension == "commune":
        code, list_date = key
        list_date = list_date if isinstance(list_date, date) else date.fromisoformat(str(list_date))
        area = source_area(code, list_date)
        return (
            {"commune_code": code, "list_date": list_date.isoformat()},
            code,
            area.name,
            area.name,
            area.area_type,
        )
    if dimension == "area-type":
        (kind,) = key
        vi, en = labels.pair(labels.AREA_TYPES, kind)
        return {"area_type": kind}, kind, vi, en, kind
    table = {"scheme": labels.SCHEMES, "agency": labels.AGENCIES, "channel": labels.CHANNELS}.get(
        dimension
    )
    (value,) = key
    if table is not None:
        vi, en = labels.pair(table, value)
        return {dimension: value}, value, vi, en, None
    return {dimension: value}, value, value, value, None  # period


class ReportQueries:
    """The reads, on the connection the request's boundary opened."""

    def __init__(self, db: Db) -> None:
        self.repo = ReadRepository(db)
        self.targets = TargetRepository(db)

    async def kpis(self, filters: Filters) -> Figures:
        return await self.repo.totals(filters)

    async def breakdown(self, dimension: str, filters: Filters, sort: str = "code") -> Breakdown:
        grouped = await self.repo.grouped(filters, DIMENSION_COLUMNS[dimension])
        rows = []
        for key, figures in grouped.items():
            fields, code, vi, en, kind = _label(dimension, key)
            district = (
                source_area(code, date.fromisoformat(fields["list_date"])).district_code
                if dimension == "commune"
                else None
            )
            rows.append(Row(fields, code, vi, en, figures, kind, district_code=district))
        rows.sort(key=_sorter(sort))
        return Breakdown(dimension, filters, rows, Figures.sum(r.figures for r in rows))

    async def timeseries(self, split: str | None, filters: Filters) -> dict[str, Any]:
        group = ("period",) + (DIMENSION_COLUMNS[split] if split else ())
        grouped = await self.repo.grouped(filters, group)
        found = sorted({key[0] for key in grouped})
        span = between(found[0], found[-1]) if found else []
        series: dict[tuple, dict[str, Any]] = {}
        for key, figures in grouped.items():
            rest = key[1:]
            if rest not in series:
                if split:
                    fields, code, vi, en, _ = _label(split, rest)
                else:
                    fields, code, vi, en = {}, "ALL", "Tất cả", "All"
                series[rest] = {
                    "key": fields,
                    "code": code,
                    "name_vi": vi,
                    "name_en": en,
                    "points": {},
                }
            series[rest]["points"][key[0]] = figures
        out = []
        for entry in sorted(series.values(), key=lambda s: s["code"]):
            entry["points"] = [(p, entry["points"].get(p, Figures())) for p in span]
            out.append(entry)
        return {"split": split, "periods": span, "series": out}

    async def periods(self) -> list[str]:
        return await self.repo.periods()

    async def target_filters(self, target: Target) -> Filters:
        return Filters(
            area_type=None if target.area_type == "ALL" else target.area_type,
            area_level=target.area_level if target.area_code else None,
            area_code=target.area_code,
            schemes=target.schemes,
        )

    async def progress(self, target: Target, as_of: str | None = None) -> Progress:
        return (await self.progress_of([target], as_of))[0]

    async def progress_of(self, targets: list[Target], as_of: str | None = None) -> list[Progress]:
        """Progress of each target at `as_of`: province-wide targets from one pass over the rollup
        (people per period, area type and scheme), district or commune ones with one query each."""
        as_of = as_of or last_complete_period()
        wide = [t for t in targets if not t.area_code]
        by_cell: dict[tuple, Figures] = {}
        if wide:
            schemes = tuple(sorted({s for t in wide for s in t.schemes}))
            by_cell = await self.repo.grouped(
                Filters(period_to=as_of, schemes=schemes),
                ("period", "area_type", "scheme"),
                claims=False,
            )
        out = []
        for target in targets:
            if target.area_code:
                filters = replace(await self.target_filters(target), period_to=as_of)
                monthly = await self.repo.monthly_people(filters)
            else:
                monthly = {}
                for (period, kind, scheme), figures in by_cell.items():
                    if scheme in target.schemes and target.area_type in ("ALL", kind):
                        paid, cashless = monthly.get(period, (0, 0))
                        monthly[period] = (
                            paid + figures.people_paid,
                            cashless + figures.people_cashless,
                        )
            series = [PeriodShare(p, paid, cashless) for p, (paid, cashless) in monthly.items()]
            out.append(evaluate(target, series, as_of))
        return out

    async def envelope_periods(self) -> list[str]:
        return await self.repo.envelope_periods()

    async def envelope_use(self, period: str) -> list[EnvelopeUse]:
        """Each agency and scheme's envelope in the period, what was approved and paid against it."""
        return envelope_use(
            await self.repo.envelopes(period),
            summarise(await self.repo.approved_totals(period)),
            await self.repo.paid_by_agency_scheme(period),
        )

    async def default_period(self, now: datetime | None = None) -> str | None:
        """The latest complete period with payments, else the latest period with any figures."""
        found = await self.repo.periods(payments_only=True) or await self.repo.periods()
        if not found:
            return None
        complete = last_complete_period(now)
        settled = [p for p in found if p <= complete]
        return settled[-1] if settled else found[-1]


def _sorter(sort: str) -> Callable[[Row], Any]:
    if sort == "share":
        # Laggards first; rows with nobody paid last.
        return lambda r: (r.figures.cashless_share is None, r.figures.cashless_share or 0, r.code)
    if sort == "-share":
        return lambda r: (
            r.figures.cashless_share is None,
            -(r.figures.cashless_share or 0),
            r.code,
        )
    if sort == "people":
        return lambda r: (-r.figures.people_paid, r.code)
    if sort == "amount":
        return lambda r: (-r.figures.paid_amount, r.code)
    return lambda r: tuple(str(v) for v in r.key.values())
