"""Targets as data, and how far the figures are from them.

A target asks that, in an area (urban, rural or all; optionally one district or commune), a share
of the people paid under some schemes are paid without cash by a deadline. Progress is read on the
latest complete period: the gap in percentage points, the trend (least-squares slope over the last
six periods), the date the trend line reaches the target, and a status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from shared.periods import add_months, last_day, period_index, period_of_date

REACHED, ON_TRACK, AT_RISK, NO_DATA = "REACHED", "ON_TRACK", "AT_RISK", "NO_DATA"
TREND_WINDOW = 6
BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class Target:
    id: str
    code: str
    title_vi: str
    title_en: str
    area_type: str  # URBAN, RURAL or ALL
    area_level: str  # province, district or commune
    area_code: str | None
    schemes: tuple[str, ...]
    target_bp: int  # basis points of the cashless share: 2500 = 25%
    deadline: date

    @property
    def share(self) -> Fraction:
        return Fraction(self.target_bp, BASIS_POINTS)


@dataclass(frozen=True, slots=True)
class PeriodShare:
    period: str
    people_paid: int
    people_cashless: int

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.people_cashless, self.people_paid) if self.people_paid else None


@dataclass(frozen=True, slots=True)
class Progress:
    target: Target
    status: str
    period: str | None
    people_paid: int
    people_cashless: int
    share: Fraction | None
    gap_pp: Fraction | None  # target minus current, in percentage points (negative once beyond)
    trend_pp_per_month: Fraction | None
    projected_date: date | None
    deadline_passed: bool
    window: tuple[PeriodShare, ...]


def least_squares_slope(points: Sequence[tuple[int, Fraction]]) -> Fraction | None:
    """Exact slope of the least-squares line through (x, y) points; None below two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = Fraction(sum(x for x, _ in points), n)
    mean_y = sum((y for _, y in points), Fraction(0)) / n
    sxx = sum(((x - mean_x) ** 2 for x, _ in points), Fraction(0))
    if sxx == 0:
        return None
    sxy = sum(((x - mean_x) * (y - mean_y) for x, y in points), Fraction(0))
    return sxy / sxx


def evaluate(target: Target, series: Sequence[PeriodShare], as_of: str) -> Progress:
    """Progress at `as_of` (the latest complete period) from the monthly series of the target's scope.

    `series` may hold any periods; the current period is the latest one up to `as_of` with people
    paid, and the trend uses the periods with data among the six ending there."""
    with_data = sorted(
        (s for s in series if s.period <= as_of and s.people_paid > 0), key=lambda s: s.period
    )
    deadline_passed = period_of_date(target.deadline) < as_of
    if not with_data:
        return Progress(target, NO_DATA, None, 0, 0, None, None, None, None, deadline_passed, ())
    latest = with_data[-1]
    first_index = period_index(latest.period) - (TREND_WINDOW - 1)
    window = tuple(s for s in with_data if period_index(s.period) >= first_index)
    share = latest.share
    assert share is not None
    pct = share * 100
    target_pct = target.share * 100
    gap = target_pct - pct
    points = [(period_index(s.period), s.share * 100) for s in window if s.share is not None]
    slope = least_squares_slope(points)
    projected: date | None = None
    if share >= target.share:
        status = REACHED
    else:
        if slope is not None and slope > 0:
            mean_x = Fraction(sum(x for x, _ in points), len(points))
            mean_y = sum((y for _, y in points), Fraction(0)) / len(points)
            crossing_x = (
                mean_x + (target_pct - mean_y) / slope
            )  # where the trend line meets the target
            months_ahead = max(1, math.ceil(crossing_x - period_index(latest.period)))
            projected = last_day(add_months(latest.period, months_ahead))
        status = ON_TRACK if projected is not None and projected <= target.deadline else AT_RISK
    return Progress(
        target,
        status,
        latest.period,
        latest.people_paid,
        latest.people_cashless,
        share,
        gap,
        slope,
        projected,
        deadline_passed,
        window,
    )
