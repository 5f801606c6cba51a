"""Payment periods: calendar months in Vietnam time, written `YYYY-MM`."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class InvalidPeriod(ValueError):
    pass


def parse_period(period: str) -> tuple[int, int]:
    match = _PERIOD.match(period or "")
    if match is None:
        raise InvalidPeriod(f"a period is written YYYY-MM, not {period!r}")
    return int(match.group(1)), int(match.group(2))


def add_months(period: str, months: int) -> str:
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def next_period(period: str) -> str:
    return add_months(period, 1)


def first_day(period: str) -> date:
    year, month = parse_period(period)
    return date(year, month, 1)


def last_day(period: str) -> date:
    return first_day(next_period(period)) - timedelta(days=1)


def vn_now(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(VN_TZ)


def vn_date(moment: datetime) -> date:
    return moment.astimezone(VN_TZ).date()


def current_period(now: datetime | None = None) -> str:
    local = vn_now(now)
    return f"{local.year:04d}-{local.month:02d}"


def end_period(kind: str, start: str, installments: int | None) -> str | None:
    """The last period an entitlement pays: its start for a one-off, start + n - 1 for n fixed
    monthly installments, none for an open-ended one."""
    if kind == "ONE_OFF":
        return start
    if kind == "FIXED_MONTHLY":
        if not installments:
            raise ValueError("a fixed monthly schedule needs its number of installments")
        return add_months(start, installments - 1)
    return None
