"""Payment periods (calendar months, Vietnam time) and installment schedules."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")  # no daylight saving
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
SCHEDULE_KINDS = ("ONE_OFF", "FIXED_MONTHLY", "OPEN_MONTHLY")


def is_period(value: str) -> bool:
    return isinstance(value, str) and bool(_PERIOD.match(value))


def period_index(period: str) -> int:
    year, month = period.split("-")
    return int(year) * 12 + int(month) - 1


def period_of_index(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def add_months(period: str, months: int) -> str:
    return period_of_index(period_index(period) + months)


def period_of(moment: datetime) -> str:
    """The payment period a UTC moment falls in, in Vietnam time."""
    local = moment.astimezone(VIETNAM)
    return f"{local.year:04d}-{local.month:02d}"


def vietnam_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(VIETNAM).date()


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: str
    start_period: str
    installments: int | None = None

    @property
    def last_period(self) -> str | None:
        """The last period paid, or None when open-ended."""
        if self.kind == "ONE_OFF":
            return self.start_period
        if self.kind == "FIXED_MONTHLY" and self.installments:
            return add_months(self.start_period, self.installments - 1)
        return None

    @property
    def count(self) -> int | None:
        if self.kind == "ONE_OFF":
            return 1
        return self.installments


def schedule_problems(kind: str, start_period: str, installments: int | None) -> list[tuple[str, str]]:
    """(field, reason) pairs for an inconsistent schedule."""
    problems: list[tuple[str, str]] = []
    if kind not in SCHEDULE_KINDS:
        problems.append(("kind", f"must be one of {', '.join(SCHEDULE_KINDS)}"))
        return problems
    if not is_period(start_period):
        problems.append(("start_period", "must be a period YYYY-MM"))
    if kind == "ONE_OFF" and installments not in (None, 1):
        problems.append(("installments", "a one-off payment has one installment"))
    elif kind == "FIXED_MONTHLY" and (installments is None or installments < 1 or installments > 600):
        problems.append(("installments", "a fixed monthly schedule needs 1 to 600 installments"))
    elif kind == "OPEN_MONTHLY" and installments is not None:
        problems.append(("installments", "an open-ended monthly schedule has no installment count"))
    return problems
