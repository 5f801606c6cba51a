"""The figures every query answers with: whole counts and whole VND, shares derived from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any


@dataclass(frozen=True, slots=True)
class Figures:
    people_paid: int = 0
    people_cashless: int = 0
    paid_count: int = 0
    paid_amount: int = 0
    cashless_count: int = 0
    cashless_amount: int = 0
    pending_count: int = 0
    pending_amount: int = 0
    failed_count: int = 0
    failed_amount: int = 0
    returned_count: int = 0
    returned_amount: int = 0
    cancelled_count: int = 0
    cancelled_amount: int = 0
    claims_received: int = 0
    decisions_approved: int = 0
    decisions_rejected: int = 0

    @property
    def cashless_share(self) -> Fraction | None:
        return Fraction(self.people_cashless, self.people_paid) if self.people_paid else None

    @property
    def decisions(self) -> int:
        return self.decisions_approved + self.decisions_rejected

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @classmethod
    def sum(cls, items: Iterable[Figures]) -> Figures:
        total = cls()
        for item in items:
            total = total + item
        return total

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Figures:
        # SUM over BIGINT comes back as an exact decimal on PostgreSQL: int() keeps it exact.
        return cls(**{f.name: int(values.get(f.name) or 0) for f in fields(cls)})

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["decisions"] = self.decisions
        out["cashless_share_percent"] = percent(self.cashless_share)
        return out


FIGURE_NAMES = tuple(f.name for f in fields(Figures))


def percent(share: Fraction | None, places: int = 2) -> float | None:
    """A share as a percentage rounded half-up for display (never used in sums)."""
    if share is None:
        return None
    value = Decimal(share.numerator * 100) / Decimal(share.denominator)
    return float(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def points(value: Fraction | None, places: int = 2) -> float | None:
    if value is None:
        return None
    decimal = Decimal(value.numerator) / Decimal(value.denominator)
    return float(decimal.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
