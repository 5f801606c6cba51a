"""Payment periods: calendar months in Vietnam time, written `YYYY-MM`."""
from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone

try:  # the IANA zone when the system has it; Vietnam has kept UTC+7 without DST since 1975
    from zoneinfo import ZoneInfo

    VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
except Exception:  # noqa: BLE001 - a system without tzdata
    VIETNAM = timezone(timedelta(hours=7))  # type: ignore[assignment]

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def is_period(value: str) -> bool:
    return bool(PERIOD_RE.match(value))


def period_of(moment: datetime) -> str:
    """The Vietnam-time month an instant falls in."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(VIETNAM)
    return f"{local.year:04d}-{local.month:02d}"


def period_of_date(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def index(period: str) -> int:
    """Months since year 0: consecutive periods differ by one."""
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def from_index(i: int) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def add_months(period: str, months: int) -> str:
    return from_index(index(period) + months)


def between(first: str, last: str) -> list[str]:
    return [from_index(i) for i in range(index(first), index(last) + 1)]


def last_day(period: str) -> date:
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, calendar.monthrange(year, month)[1])


def current(now: datetime | None = None) -> str:
    return period_of(now or datetime.now(UTC))


def last_complete(now: datetime | None = None) -> str:
    """The latest month that has ended, in Vietnam time."""
    return add_months(current(now), -1)
