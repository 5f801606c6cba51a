"""Read queries over the cubes: filtered, grouped sums. Never touches the facts tables."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.adapters.orm import claim_cube, payment_cube
from services.reporting.domain.figures import Figures
from services.reporting.domain.model import CASHLESS_CHANNELS

# Group-by columns per dimension (the same names exist in both cubes).
DIMENSION_COLUMNS: dict[str, tuple[str, ...]] = {
    "province": ("area_province",),
    "district": ("area_province", "area_district"),
    "commune": ("area_commune", "area_list"),
    "area-type": ("area_type",),
    "scheme": ("scheme",),
    "agency": ("agency",),
    "channel": ("channel",),
    "period": ("period",),
}
DIMENSIONS = tuple(DIMENSION_COLUMNS)


@dataclass(frozen=True, slots=True)
class Filters:
    period_from: str | None = None
    period_to: str | None = None
    area_level: str | None = None  # province, district or commune
    area_code: str | None = None
    area_list_date: date | None = None
    area_type: str | None = None  # URBAN, RURAL or UNKNOWN
    schemes: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_from": self.period_from, "period_to": self.period_to, "area_level": self.area_level,
            "area_code": self.area_code,
            "area_list_date": self.area_list_date.isoformat() if self.area_list_date else None,
            "area_type": self.area_type, "schemes": list(self.schemes), "agencies": list(self.agencies),
            "channels": list(self.channels),
        }


def _where(table, filters: Filters, *, channel_column: bool) -> list[Any]:  # noqa: ANN001
    c = table.c
    clauses: list[Any] = []
    if filters.period_from:
        clauses.append(c.period >= filters.period_from)
    if filters.period_to:
        clauses.append(c.period <= filters.period_to)
    if filters.area_code and filters.area_level:
        column = {"province": c.area_province, "district": c.area_district, "commune": c.area_commune}[
            filters.area_level]
        clauses.append(column == filters.area_code)
        if filters.area_level == "commune" and filters.area_list_date:
            clauses.append(c.area_list == filters.area_list_date)
    if filters.area_type:
        clauses.append(c.area_type == filters.area_type)
    if filters.schemes:
        clauses.append(c.scheme.in_(filters.schemes))
    if filters.agencies:
        clauses.append(c.agency.in_(filters.agencies))
    if filters.channels and channel_column:
        clauses.append(c.channel.in_(filters.channels))
    return clauses


def _payment_query(filters: Filters, group: Sequence[str]) -> Select:
    c = payment_cube.c
    cashless = c.channel.in_(sorted(CASHLESS_CHANNELS))

    def when_cashless(column):  # noqa: ANN001, ANN202
        return func.coalesce(func.sum(case((cashless, column), else_=literal(0))), 0)

    def total(column):  # noqa: ANN001, ANN202
        return func.coalesce(func.sum(column), 0)

    columns = [c[name] for name in group] + [
        total(c.people_paid).label("people_paid"),
        when_cashless(c.people_paid).label("people_cashless"),
        total(c.paid_count).label("paid_count"),
        total(c.paid_amount).label("paid_amount"),
        when_cashless(c.paid_count).label("cashless_count"),
        when_cashless(c.paid_amount).label("cashless_amount"),
        *[total(c[f"{g}_{k}"]).label(f"{g}_{k}") for g in ("pending", "failed", "returned", "cancelled")
          for k in ("count", "amount")],
    ]
    query = select(*columns).where(and_(True, *_where(payment_cube, filters, channel_column=True)))
    if group:
        query = query.group_by(*[c[name] for name in group])
    return query


def _claim_query(filters: Filters, group: Sequence[str]) -> Select:
    c = claim_cube.c
    columns = [c[name] for name in group] + [
        func.coalesce(func.sum(c.received), 0).label("claims_received"),
        func.coalesce(func.sum(c.approved), 0).label("decisions_approved"),
        func.coalesce(func.sum(c.rejected), 0).label("decisions_rejected"),
    ]
    query = select(*columns).where(and_(True, *_where(claim_cube, filters, channel_column=False)))
    if group:
        query = query.group_by(*[c[name] for name in group])
    return query


def claims_apply(filters: Filters, group: Sequence[str]) -> bool:
    """Claims have no payment channel: they are left out when grouping or filtering by channel."""
    return "channel" not in group and not filters.channels


class ReadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grouped(self, filters: Filters, group: Sequence[str]) -> dict[tuple, Figures]:
        """Figures per distinct value of the `group` columns (one entry, key (), when empty)."""
        merged: dict[tuple, dict[str, Any]] = {}
        for row in (await self.session.execute(_payment_query(filters, group))).mappings():
            key = tuple(row[name] for name in group)
            merged.setdefault(key, {}).update(row)
        if claims_apply(filters, group):
            for row in (await self.session.execute(_claim_query(filters, group))).mappings():
                key = tuple(row[name] for name in group)
                merged.setdefault(key, {}).update(row)
        return {key: Figures.from_mapping(values) for key, values in merged.items()}

    async def totals(self, filters: Filters) -> Figures:
        return (await self.grouped(filters, ())).get((), Figures())

    async def periods(self) -> list[str]:
        paid = select(payment_cube.c.period).distinct()
        claimed = select(claim_cube.c.period).distinct()
        found = set((await self.session.execute(paid)).scalars()) | set((await self.session.execute(claimed)).scalars())
        return sorted(found)

    async def monthly_people(self, filters: Filters) -> dict[str, tuple[int, int]]:
        """(people paid, people paid without cash) per period."""
        grouped = await self.grouped(filters, ("period",))
        return {key[0]: (f.people_paid, f.people_cashless) for key, f in grouped.items()}

    async def latest_period_with_payments(self, filters: Filters) -> str | None:
        c = payment_cube.c
        query = select(func.max(c.period)).where(
            and_(c.people_paid > 0, *_where(payment_cube, filters, channel_column=True))
        )
        return (await self.session.execute(query)).scalar_one_or_none()
