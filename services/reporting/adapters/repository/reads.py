"""Read queries over the cubes: filtered, grouped sums. Never touches the facts tables. Funds
envelopes: their budgets and approval lines (a few rows per period), the paid side from the
payment rollup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Label,
    Select,
    Table,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    union,
    union_all,
)

from services.reporting.adapters.orm import (
    claim_cube,
    claim_rollup,
    envelope_approvals,
    envelope_budgets,
    payment_cube,
    payment_rollup,
)
from services.reporting.adapters.repository.common import Db
from services.reporting.domain.envelopes import ApprovedTotal, EnvelopeKey
from services.reporting.domain.figures import Figures
from services.reporting.domain.model import CASHLESS_CHANNELS
from shared.clock import as_utc

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
            "period_from": self.period_from,
            "period_to": self.period_to,
            "area_level": self.area_level,
            "area_code": self.area_code,
            "area_list_date": self.area_list_date.isoformat() if self.area_list_date else None,
            "area_type": self.area_type,
            "schemes": list(self.schemes),
            "agencies": list(self.agencies),
            "channels": list(self.channels),
        }


def _where(table: Table, filters: Filters, *, channel_column: bool) -> list[ColumnElement[bool]]:
    c = table.c
    clauses: list[ColumnElement[bool]] = []
    if filters.period_from:
        clauses.append(c.period >= filters.period_from)
    if filters.period_to:
        clauses.append(c.period <= filters.period_to)
    if filters.area_code and filters.area_level:
        column = {
            "province": "area_province",
            "district": "area_district",
            "commune": "area_commune",
        }[filters.area_level]
        clauses.append(c[column] == filters.area_code)
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


def _by_commune(filters: Filters, group: Sequence[str]) -> bool:
    """Only commune-level questions need the cube; the rest read the (much smaller) rollup."""
    return "area_commune" in group or filters.area_level == "commune"


PAYMENT_FIELDS = (
    "people_paid",
    "people_cashless",
    "paid_count",
    "paid_amount",
    "cashless_count",
    "cashless_amount",
    "pending_count",
    "pending_amount",
    "failed_count",
    "failed_amount",
    "returned_count",
    "returned_amount",
    "cancelled_count",
    "cancelled_amount",
)
CLAIM_FIELDS = ("claims_received", "decisions_approved", "decisions_rejected")


def _zero(name: str) -> Label[int]:
    return cast(literal_column("0"), BigInteger).label(name)


def _payment_rows(filters: Filters, group: Sequence[str], with_claims: bool) -> Select:
    table = payment_cube if _by_commune(filters, group) else payment_rollup
    c = table.c
    cashless = c.channel.in_(sorted(CASHLESS_CHANNELS))

    def when_cashless(column: ColumnElement[int], name: str) -> Label[int]:
        return case((cashless, column), else_=cast(literal_column("0"), BigInteger)).label(name)

    columns = [c[name].label(name) for name in group] + [
        c.people_paid.label("people_paid"),
        when_cashless(c.people_paid, "people_cashless"),
        c.paid_count.label("paid_count"),
        c.paid_amount.label("paid_amount"),
        when_cashless(c.paid_count, "cashless_count"),
        when_cashless(c.paid_amount, "cashless_amount"),
        *[
            c[f"{g}_{k}"].label(f"{g}_{k}")
            for g in ("pending", "failed", "returned", "cancelled")
            for k in ("count", "amount")
        ],
    ]
    if with_claims:
        columns += [_zero(name) for name in CLAIM_FIELDS]
    return select(*columns).where(and_(True, *_where(table, filters, channel_column=True)))


def _claim_rows(filters: Filters, group: Sequence[str]) -> Select:
    table = claim_cube if _by_commune(filters, group) else claim_rollup
    c = table.c
    columns = (
        [c[name].label(name) for name in group]
        + [_zero(name) for name in PAYMENT_FIELDS]
        + [
            c.received.label("claims_received"),
            c.approved.label("decisions_approved"),
            c.rejected.label("decisions_rejected"),
        ]
    )
    return select(*columns).where(and_(True, *_where(table, filters, channel_column=False)))


def figures_query(filters: Filters, group: Sequence[str], claims: bool = True) -> Select:
    """One statement: payments and (where they apply) claims, summed per group."""
    with_claims = claims and claims_apply(filters, group)
    rows = _payment_rows(filters, group, with_claims)
    source = (
        union_all(rows, _claim_rows(filters, group)).subquery() if with_claims else rows.subquery()
    )
    fields = PAYMENT_FIELDS + (CLAIM_FIELDS if with_claims else ())
    query = select(
        *[source.c[name] for name in group],
        *[func.coalesce(func.sum(source.c[name]), 0).label(name) for name in fields],
    )
    if group:
        query = query.group_by(*[source.c[name] for name in group])
    return query


def claims_apply(filters: Filters, group: Sequence[str]) -> bool:
    """Claims have no payment channel: they are left out when grouping or filtering by channel."""
    return "channel" not in group and not filters.channels


class ReadRepository:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def grouped(
        self, filters: Filters, group: Sequence[str], *, claims: bool = True
    ) -> dict[tuple, Figures]:
        """Figures per distinct value of the `group` columns (one entry, key (), when empty)."""
        merged: dict[tuple, dict[str, Any]] = {}
        for row in (await self.db.execute(figures_query(filters, group, claims))).mappings():
            merged[tuple(row[name] for name in group)] = dict(row)
        return {key: Figures.from_mapping(values) for key, values in merged.items()}

    async def totals(self, filters: Filters) -> Figures:
        return (await self.grouped(filters, ())).get((), Figures())

    async def periods(self, payments_only: bool = False) -> list[str]:
        paid = select(payment_rollup.c.period)
        query: Select[str] | CompoundSelect[str] = (
            paid.distinct() if payments_only else union(paid, select(claim_rollup.c.period))
        )
        return sorted((await self.db.execute(query)).scalars())

    async def monthly_people(self, filters: Filters) -> dict[str, tuple[int, int]]:
        """(people paid, people paid without cash) per period."""
        grouped = await self.grouped(filters, ("period",), claims=False)
        return {key[0]: (f.people_paid, f.people_cashless) for key, f in grouped.items()}

    # --- funds envelopes --------------------------------------------------------------------

    async def envelope_periods(self) -> list[str]:
        query = union(select(envelope_budgets.c.period), select(envelope_approvals.c.period))
        return sorted((await self.db.execute(query)).scalars())

    async def envelopes(self, period: str) -> dict[EnvelopeKey, int]:
        b = envelope_budgets
        rows = await self.db.execute(
            select(b.c.period, b.c.agency, b.c.scheme, b.c.amount).where(b.c.period == period)
        )
        return {EnvelopeKey(r.period, r.agency, r.scheme): int(r.amount) for r in rows}

    async def approved_totals(self, period: str) -> list[ApprovedTotal]:
        a = envelope_approvals
        rows = await self.db.execute(select(a).where(a.c.period == period))
        return [
            ApprovedTotal(
                r["approval_id"],
                EnvelopeKey(r["period"], r["agency"], r["scheme"]),
                int(r["count"]),
                int(r["amount"]),
                None if r["envelope"] is None else int(r["envelope"]),
                as_utc(r["approved_at"]),
            )
            for r in rows.mappings()
        ]

    async def paid_by_agency_scheme(self, period: str) -> dict[EnvelopeKey, tuple[int, int]]:
        """(amount paid, people paid) per agency and scheme in the period: settled or paid in cash."""
        r = payment_rollup
        rows = await self.db.execute(
            select(
                r.c.agency,
                r.c.scheme,
                func.sum(r.c.paid_amount).label("paid"),
                func.sum(r.c.people_paid).label("people"),
            )
            .where(r.c.period == period)
            .group_by(r.c.agency, r.c.scheme)
        )
        return {
            EnvelopeKey(period, row.agency, row.scheme): (int(row.paid or 0), int(row.people or 0))
            for row in rows
        }
