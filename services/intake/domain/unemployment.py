"""The unemployment benefit rule (Law on Employment 2013, art. 50).

Monthly amount: 60% of the average insured monthly salary of the last 6 months, at most 5 times
the base salary (lương cơ sở) for people paid on the state salary scale, or 5 times the regional
minimum wage for people whose employer sets their salary. The law takes the figure in force at
the time the labour or working contract ended (art. 50(1)), so the cap is chosen by that date.
Duration: 3 months for 12 to 36 months of contributions, one more month for every further full
12 months, at most 12 months. Under 12 months: not eligible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

SalaryRegime = Literal["ENTERPRISE", "STATE"]
ENTERPRISE: SalaryRegime = "ENTERPRISE"  # salary decided by the employer: regional minimum wage
STATE: SalaryRegime = "STATE"  # state salary scale: base salary
SALARY_REGIMES: tuple[SalaryRegime, ...] = (ENTERPRISE, STATE)
REGIONS = ("I", "II", "III", "IV")

# Regional minimum monthly wages, each with the day it took effect (newest last).
REGIONAL_MINIMUM_WAGES: tuple[tuple[date, dict[str, int]], ...] = (
    (
        date(2020, 1, 1),
        {"I": 4_420_000, "II": 3_920_000, "III": 3_430_000, "IV": 3_070_000},
    ),  # Decree 90/2019
    (
        date(2022, 7, 1),
        {"I": 4_680_000, "II": 4_160_000, "III": 3_640_000, "IV": 3_250_000},
    ),  # Decree 38/2022
    (
        date(2024, 7, 1),
        {"I": 4_960_000, "II": 4_410_000, "III": 3_860_000, "IV": 3_450_000},
    ),  # Decree 74/2024
)
# The base salary (lương cơ sở), each with the day it took effect (newest last).
BASE_SALARIES: tuple[tuple[date, int], ...] = (
    (date(2019, 7, 1), 1_490_000),  # Decree 38/2019
    (date(2023, 7, 1), 1_800_000),  # Decree 24/2023
    (date(2024, 7, 1), 2_340_000),  # Decree 73/2024
)
CAP_MULTIPLE = 5
RATE_PERCENT = 60
MIN_CONTRIBUTION_MONTHS = 12
BASE_MONTHS = 3
BASE_CONTRIBUTION_MONTHS = 36
MAX_MONTHS = 12


class NotEligible(ValueError):
    pass


class NoWageInForce(ValueError):
    """No minimum wage or base salary is known for that date."""


@dataclass(frozen=True, slots=True)
class UnemploymentBenefit:
    monthly_amount: int
    months: int
    capped: bool
    cap: int

    @property
    def total(self) -> int:
        return self.monthly_amount * self.months


def _in_force(table: tuple[tuple[date, object], ...], on: date, what: str) -> object:
    current = None
    for since, value in table:
        if since <= on:
            current = value
    if current is None:
        raise NoWageInForce(f"no {what} is known for {on.isoformat()}")
    return current


def regional_minimum_wage(region: str, on: date) -> int:
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}")
    wages = _in_force(REGIONAL_MINIMUM_WAGES, on, "regional minimum wage")
    assert isinstance(wages, dict)
    return int(wages[region])


def base_salary(on: date) -> int:
    return int(_in_force(BASE_SALARIES, on, "base salary"))  # type: ignore[call-overload]


def benefit_cap(region: str, on: date, regime: SalaryRegime = ENTERPRISE) -> int:
    """The monthly ceiling for a contract that ended on `on`."""
    if regime == STATE:
        return CAP_MULTIPLE * base_salary(on)
    if regime != ENTERPRISE:
        raise ValueError(f"unknown salary regime {regime!r}")
    return CAP_MULTIPLE * regional_minimum_wage(region, on)


def benefit_months(contribution_months: int) -> int:
    if contribution_months < MIN_CONTRIBUTION_MONTHS:
        raise NotEligible(
            f"{contribution_months} months of contributions: at least {MIN_CONTRIBUTION_MONTHS} are required"
        )
    extra_years = max(0, contribution_months - BASE_CONTRIBUTION_MONTHS) // 12
    return min(MAX_MONTHS, BASE_MONTHS + extra_years)


def unemployment_benefit(
    average_salary: int,
    contribution_months: int,
    region: str,
    *,
    contract_ended_on: date,
    regime: SalaryRegime = ENTERPRISE,
) -> UnemploymentBenefit:
    """The amount and duration the rule grants; integer VND, rounded down to the đồng."""
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}")
    if average_salary <= 0:
        raise ValueError("the average salary must be positive")
    months = benefit_months(contribution_months)
    raw = average_salary * RATE_PERCENT // 100
    cap = benefit_cap(region, contract_ended_on, regime)
    return UnemploymentBenefit(
        monthly_amount=min(raw, cap), months=months, capped=raw > cap, cap=cap
    )
