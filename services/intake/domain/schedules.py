"""Installment schedules: their kinds and consistency rules (periods are `shared.periods`)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.periods import is_period, last_scheduled_period

SCHEDULE_KINDS = ("ONE_OFF", "FIXED_MONTHLY", "OPEN_MONTHLY")


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: str
    start_period: str
    installments: int | None = None

    @property
    def last_period(self) -> str | None:
        """The last period paid, or None when open-ended."""
        if self.kind == "FIXED_MONTHLY" and not self.installments:
            return None  # inconsistent (see `schedule_problems`): nothing known to end it
        return last_scheduled_period(self.kind, self.start_period, self.installments)

    @property
    def count(self) -> int | None:
        if self.kind == "ONE_OFF":
            return 1
        return self.installments


def schedule_problems(
    kind: str, start_period: str, installments: int | None
) -> list[tuple[str, str]]:
    """(field, reason) pairs for an inconsistent schedule."""
    problems: list[tuple[str, str]] = []
    if kind not in SCHEDULE_KINDS:
        problems.append(("kind", f"must be one of {', '.join(SCHEDULE_KINDS)}"))
        return problems
    if not is_period(start_period):
        problems.append(("start_period", "must be a period YYYY-MM"))
    if kind == "ONE_OFF" and installments not in (None, 1):
        problems.append(("installments", "a one-off payment has one installment"))
    elif kind == "FIXED_MONTHLY" and (
        installments is None or installments < 1 or installments > 600
    ):
        problems.append(("installments", "a fixed monthly schedule needs 1 to 600 installments"))
    elif kind == "OPEN_MONTHLY" and installments is not None:
        problems.append(("installments", "an open-ended monthly schedule has no installment count"))
    return problems
