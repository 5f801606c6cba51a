"""Identity revalidation before a period is paid: what the population registry's answer about a
person means for paying them. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.intake.domain.entitlements import STOPPED, covered_periods
from services.intake.domain.schedules import Schedule
from shared.periods import period_index

CONFIRMED = "CONFIRMED"
DECEASED = "DECEASED"
IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
NOT_FOUND = "NOT_FOUND"
OUTCOMES = (CONFIRMED, DECEASED, IDENTITY_MISMATCH, NOT_FOUND)
HOLDS = (DECEASED, IDENTITY_MISMATCH, NOT_FOUND)  # the outcomes that stop a payment

PENDING = "PENDING"
DONE = "DONE"

# Stop proposals
OPEN = "OPEN"
PROPOSAL_CONFIRMED = "CONFIRMED"
DISMISSED = "DISMISSED"
PROPOSAL_STATES = (OPEN, PROPOSAL_CONFIRMED, DISMISSED)
REASON_DECEASED = "DECEASED"


@dataclass(frozen=True, slots=True)
class RegistryAnswer:
    """The registry's answer about one CCCD: found, alive or deceased, and whether the name (and
    the date of birth, when asked) match what intake holds."""

    found: bool
    deceased: bool = False
    date_of_death: date | None = None
    name_matches: bool | None = None
    date_of_birth_matches: bool | None = None


def outcome(answer: RegistryAnswer) -> str:
    """NOT_FOUND when the registry does not know the CCCD; IDENTITY_MISMATCH when it knows it
    under another name or date of birth (the CCCD may be wrong: nobody is proposed for a stop on
    it); DECEASED when the person it knows under that name died; CONFIRMED otherwise."""
    if not answer.found:
        return NOT_FOUND
    if answer.name_matches is False or answer.date_of_birth_matches is False:
        return IDENTITY_MISMATCH
    if answer.deceased:
        return DECEASED
    return CONFIRMED


def parts(holds: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    """The holds in parts of at most `size` (one empty part when there is none): each part is
    one `RevalidationCompleted`."""
    if not holds:
        return [[]]
    return [holds[start : start + size] for start in range(0, len(holds), size)]


def pays_in(
    schedule: Schedule, status: str, stop_effective_period: str | None, period: str
) -> bool:
    """Whether an entitlement pays an installment in `period` (the people a pass checks): its
    schedule reaches the period and no stop before it. The SQL twin is
    `adapters.revalidation_repository.pays_in`, tested to agree."""
    first, last = covered_periods(schedule, stop_effective_period if status == STOPPED else None)
    index = period_index(period)
    return first <= index and (last is None or index <= last)
