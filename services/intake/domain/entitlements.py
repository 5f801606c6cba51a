"""Entitlements: what an approval (or a roll entry) grants, and how it stops."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.intake.domain.errors import Conflict, FieldError, Invalid
from services.intake.domain.schedules import Schedule
from shared.periods import is_period, period_index

ACTIVE = "ACTIVE"
STOPPED = "STOPPED"
STOP_REASONS = ("DEATH", "RETURN_TO_WORK", "END_OF_ELIGIBILITY", "OTHER")


def check_stop(
    status: str,
    schedule: Schedule,
    reason: str,
    effective_period: str,
    stopped_reason: str | None = None,
    stopped_period: str | None = None,
) -> bool:
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
        raise Conflict(
            f"the entitlement was already stopped from {stopped_period} ({stopped_reason})"
        )
    last = schedule.last_period
    if last is not None and period_index(effective_period) > period_index(last):
        raise Invalid(
            [FieldError("/effective_period", f"the schedule already ends with {last}")],
            "nothing is left to stop",
        )
    return True


# --- one entitlement per person and scheme ---------------------------------------------------
#
# A person is paid a scheme once a period, so two entitlements of one scheme must never cover the
# same period. An entitlement covers its schedule, up to the period before its stop. The database
# backs this for the open-ended ones (one ACTIVE OPEN_MONTHLY per person and scheme, an index),
# so that two grants racing each other cannot both commit.


@dataclass(frozen=True, slots=True)
class HeldEntitlement:
    """An entitlement a person already holds, as the rule needs to see it."""

    id: str
    scheme: str
    decision_number: str
    status: str
    schedule: Schedule
    stop_effective_period: str | None = None


class DuplicateEntitlement(Conflict):
    """The person already holds an entitlement of the scheme for a period the new one would pay."""

    type_slug = "duplicate-entitlement"

    @classmethod
    def of(cls, held: HeldEntitlement) -> DuplicateEntitlement:
        return cls(duplicate_detail(held), entitlement_id=held.id, scheme=held.scheme)

    @classmethod
    def concurrent(cls, scheme: str) -> DuplicateEntitlement:
        """Another grant of the scheme to the person committed first (the database said so)."""
        return cls(
            f"this person was granted an active {scheme} entitlement by a concurrent decision or roll "
            "upload; a person is paid a scheme once a period",
            scheme=scheme,
        )


def covered_periods(
    schedule: Schedule, stop_effective_period: str | None = None
) -> tuple[int, int | None]:
    """First and last period index paid (last None: open-ended); empty when last < first."""
    first = period_index(schedule.start_period)
    last = schedule.last_period
    last_index = period_index(last) if last is not None else None
    if stop_effective_period is not None:
        before_stop = period_index(stop_effective_period) - 1
        last_index = before_stop if last_index is None else min(last_index, before_stop)
    return first, last_index


def _overlap(a: tuple[int, int | None], b: tuple[int, int | None]) -> bool:
    (a_first, a_last), (b_first, b_last) = a, b
    if (a_last is not None and a_last < a_first) or (b_last is not None and b_last < b_first):
        return False  # one of them pays nothing
    return (a_last is None or b_first <= a_last) and (b_last is None or a_first <= b_last)


def overlapping_entitlement(
    held: Iterable[HeldEntitlement], scheme: str, schedule: Schedule
) -> HeldEntitlement | None:
    """The entitlement of `scheme` among `held` that would pay a period `schedule` pays, if any."""
    wanted = covered_periods(schedule)
    for entitlement in held:
        if entitlement.scheme != scheme:
            continue
        stop = entitlement.stop_effective_period if entitlement.status == STOPPED else None
        if _overlap(covered_periods(entitlement.schedule, stop), wanted):
            return entitlement
    return None


def check_one_per_scheme(held: Iterable[HeldEntitlement], scheme: str, schedule: Schedule) -> None:
    """Refuse a grant of `scheme` on `schedule` to a person who already holds one for its periods."""
    other = overlapping_entitlement(held, scheme, schedule)
    if other is not None:
        raise DuplicateEntitlement.of(other)


def duplicate_detail(held: HeldEntitlement) -> str:
    if held.status == STOPPED and held.stop_effective_period:
        until = f"paid until its stop from {held.stop_effective_period}"
    elif held.schedule.last_period is None:
        until = "open-ended"
    else:
        until = f"paid until {held.schedule.last_period}"
    return (
        f"this person already has an active {held.scheme} entitlement (decision {held.decision_number}, "
        f"from {held.schedule.start_period}, {until}); a person is paid a scheme once a period: "
        "stop that entitlement first, or grant from the period it no longer pays"
    )
