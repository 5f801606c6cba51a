"""Entitlements: what an approval (or a roll entry) grants, and how it stops."""
from __future__ import annotations

from services.intake.domain.errors import Conflict, FieldError, Invalid
from services.intake.domain.schedules import Schedule, is_period, period_index

ACTIVE = "ACTIVE"
STOPPED = "STOPPED"
STOP_REASONS = ("DEATH", "RETURN_TO_WORK", "END_OF_ELIGIBILITY", "OTHER")


def check_stop(status: str, schedule: Schedule, reason: str, effective_period: str,
               stopped_reason: str | None = None, stopped_period: str | None = None) -> bool:
    """True when the stop must be applied, False when it repeats the one already applied.

    An entitlement stops once; its installments from `effective_period` on are not paid."""
    errors = []
    if reason not in STOP_REASONS:
        errors.append(FieldError("/reason", f"must be one of {', '.join(STOP_REASONS)}"))
    if not is_period(effective_period):
        errors.append(FieldError("/effective_period", "must be a period YYYY-MM"))
    if errors:
        raise Invalid(errors)
    if status == STOPPED:
        if stopped_reason == reason and stopped_period == effective_period:
            return False
        raise Conflict(f"the entitlement was already stopped from {stopped_period} ({stopped_reason})")
    last = schedule.last_period
    if last is not None and period_index(effective_period) > period_index(last):
        raise Invalid([FieldError("/effective_period", f"the schedule already ends with {last}")],
                      "nothing is left to stop")
    return True
