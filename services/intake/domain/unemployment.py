"""The unemployment benefit rule (Law on Employment 2013, art. 50; 2022-23 minimum wages).

Monthly amount: 60% of the average insured monthly salary of the last 6 months, at most 5 times
the regional minimum wage. Duration: 3 months for 12 to 36 months of contributions, one more
month for every further full 12 months, at most 12 months. Under 12 months: not eligible.
"""
from __future__ import annotations

from dataclasses import dataclass

REGIONAL_MINIMUM_WAGE: dict[str, int] = {"I": 4_680_000, "II": 4_160_000, "III": 3_640_000, "IV": 3_250_000}
CAP_MULTIPLE = 5
RATE_PERCENT = 60
MIN_CONTRIBUTION_MONTHS = 12
BASE_MONTHS = 3
BASE_CONTRIBUTION_MONTHS = 36
MAX_MONTHS = 12


class NotEligible(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class UnemploymentBenefit:
    monthly_amount: int
    months: int
    capped: bool

    @property
    def total(self) -> int:
        return self.monthly_amount * self.months


def regional_cap(region: str) -> int:
    return CAP_MULTIPLE * REGIONAL_MINIMUM_WAGE[region]


def benefit_months(contribution_months: int) -> int:
    if contribution_months < MIN_CONTRIBUTION_MONTHS:
        raise NotEligible(
            f"{contribution_months} months of contributions: at least {MIN_CONTRIBUTION_MONTHS} are required"
        )
    extra_years = max(0, contribution_months - BASE_CONTRIBUTION_MONTHS) // 12
    return min(MAX_MONTHS, BASE_MONTHS + extra_years)


def unemployment_benefit(average_salary: int, contribution_months: int, region: str) -> UnemploymentBenefit:
    """The amount and duration the rule grants; integer VND, rounded down to the đồng."""
    if region not in REGIONAL_MINIMUM_WAGE:
        raise ValueError(f"unknown region {region!r}")
    if average_salary <= 0:
        raise ValueError("the average salary must be positive")
    months = benefit_months(contribution_months)
    raw = average_salary * RATE_PERCENT // 100
    cap = regional_cap(region)
    return UnemploymentBenefit(monthly_amount=min(raw, cap), months=months, capped=raw > cap)
