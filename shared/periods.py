"""Payment periods: calendar months in Vietnam time, written `YYYY-MM`. The one home of period
arithmetic for every service."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from shared.clock import as_utc

# Vietnam has kept UTC+7 without daylight saving since 1975: a fixed offset needs no tzdata.
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class InvalidPeriod(ValueError):
    pass


def is_period(value: object) -> bool:
    return isinstance(value, str) and _PERIOD.match(value) is not None


def parse_period(period: str) -> tuple[int, int]:
    match = _PERIOD.match(period or "")
    if match is None:
        raise InvalidPeriod(f"a period is written YYYY-MM, not {period!r}")
    return int(match.group(1)), int(match.group(2))


def period_index(period: str) -> int:
    """Months since year 0: consecutive periods differ by one."""
    year, month = parse_period(period)
    return year * 12 + month - 1


def period_of_index(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def add_months(period: str, months: int) -> str:
    return period_of_index(period_index(period) + months)


def next_period(period: str) -> str:
    return add_months(period, 1)


def between(first: str, last: str) -> list[str]:
    """Every period from `first` to `last`, both included."""
    return [period_of_index(i) for i in range(period_index(first), period_index(last) + 1)]


def first_day(period: str) -> date:
    year, month = parse_period(period)
    return date(year, month, 1)


def last_day(period: str) -> date:
    return first_day(next_period(period)) - timedelta(days=1)


def period_of_date(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def vietnam_time(moment: datetime | None = None) -> datetime:
    """`moment` (now by default) in Vietnam time; a naive moment is taken as UTC."""
    return as_utc(moment or datetime.now(UTC)).astimezone(VIETNAM)


def vietnam_date(moment: datetime | None = None) -> date:
    return vietnam_time(moment).date()


def period_of(moment: datetime) -> str:
    """The Vietnam-time month an instant falls in."""
    return period_of_date(vietnam_date(moment))


def current_period(now: datetime | None = None) -> str:
    return period_of(now or datetime.now(UTC))


def last_complete_period(now: datetime | None = None) -> str:
    """The latest month that has ended, in Vietnam time."""
    return add_months(current_period(now), -1)


def last_scheduled_period(kind: str, start: str, installments: int | None) -> str | None:
    """The last period a schedule pays: its start for a one-off, start + n - 1 for n fixed
    monthly installments, none for an open-ended one."""
    if kind == "ONE_OFF":
        return start
    if kind == "FIXED_MONTHLY":
        if not installments:
            raise ValueError("a fixed monthly schedule needs its number of installments")
        return add_months(start, installments - 1)
    return None
