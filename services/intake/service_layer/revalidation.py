"""Identity revalidation before a period is paid (the use cases; the worker and the consumer
are their boundaries).

Payout's `CycleOpened` records a request for the period. A pass then reads everyone intake pays
in that period in chunks (beneficiaries in id order), asks the population registry about each
chunk outside any transaction, and writes the chunk's outcomes together with the move of the
pass's cursor: a pass stopped anywhere resumes at its cursor, and a chunk written twice (two
workers, a retry) is refused by the cursor's compare-and-set. A deceased holder's open
entitlements get one stop proposal each, once. When nobody is left, the holds go out as
`RevalidationCompleted` parts, the last one marked, and the request is done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from services.intake.adapters import revalidation_repository as repository
from services.intake.adapters.population import IdentityQuery
from services.intake.adapters.repository import Executor
from services.intake.domain import revalidation as rules
from services.intake.domain.revalidation import RegistryAnswer
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.events.contracts import (
    MAX_REVALIDATION_HOLDS,
    RevalidationCompleted,
    RevalidationHold,
)
from shared.uow import UnitOfWork


class PassMoved(Exception):
    """The pass is no longer where this worker left it: another worker took it on, or it ended."""


@dataclass(frozen=True, slots=True)
class Pass:
    """A period's pass as a worker holds it: its cursor and how far it has come."""

    period: str
    after: str | None
    checked: int
    chunks: int


@dataclass(frozen=True, slots=True)
class Person:
    beneficiary_id: str
    query: IdentityQuery


async def request_revalidation(uow: UnitOfWork, period: str, opened_at: datetime) -> bool:
    """Record that `period` is to be revalidated; False when it already was asked for."""
    return await repository.add_request(uow, period, opened_at)


async def claim_pass(uow: UnitOfWork, lease_seconds: float) -> Pass | None:
    row = await repository.claim_request(uow, uow.now + timedelta(seconds=lease_seconds))
    if row is None:
        return None
    return Pass(row.period, row.after_beneficiary, row.checked, row.chunks)


async def next_persons(db: Executor, current: Pass, limit: int) -> list[Person]:
    rows = await repository.persons_paid(db, current.period, current.after, limit)
    return [
        Person(row.id, IdentityQuery(row.national_id, row.full_name, row.date_of_birth))
        for row in rows
    ]


async def release_pass(uow: UnitOfWork, current: Pass) -> None:
    await repository.release(uow, current.period, current.after)


async def record_chunk(
    uow: IntakeUnitOfWork,
    current: Pass,
    persons: list[Person],
    answers: list[RegistryAnswer],
    lease_seconds: float,
) -> Pass:
    """Write a chunk's outcomes and stop proposals with the cursor's move; the pass as it now is.
    Raises PassMoved (the caller rolls back) when the cursor is no longer `current.after`."""
    assert persons and len(persons) == len(answers)
    new_after = persons[-1].beneficiary_id
    if not await repository.advance(
        uow,
        current.period,
        current.after,
        new_after,
        len(persons),
        uow.now + timedelta(seconds=lease_seconds),
    ):
        raise PassMoved(current.period)
    results = []
    deceased: dict[str, date | None] = {}
    for person, answer in zip(persons, answers, strict=True):
        outcome = rules.outcome(answer)
        died = answer.date_of_death if outcome == rules.DECEASED else None
        if outcome == rules.DECEASED:
            deceased[person.beneficiary_id] = died
        results.append(
            {
                "period": current.period,
                "beneficiary_id": person.beneficiary_id,
                "outcome": outcome,
                "date_of_death": died,
                "checked_at": uow.now,
            }
        )
    await repository.write_results(uow, results)
    await _propose_stops(uow, current.period, deceased)
    await uow.flush()
    return replace(
        current,
        after=new_after,
        checked=current.checked + len(persons),
        chunks=current.chunks + 1,
    )


async def _propose_stops(
    uow: IntakeUnitOfWork, period: str, deceased: dict[str, date | None]
) -> None:
    """One proposal per open entitlement of a deceased holder, never a second one for the same
    entitlement (whichever period found it)."""
    open_rights = await repository.open_entitlements_of(uow, list(deceased))
    known = await repository.proposed_entitlements(
        uow, [e.id for e in open_rights], rules.REASON_DECEASED
    )
    rows = []
    for right in open_rights:
        if right.id in known:
            continue
        proposal_id = str(uuid.uuid4())
        rows.append(
            {
                "id": proposal_id,
                "entitlement_id": right.id,
                "beneficiary_id": right.beneficiary_id,
                "agency": right.agency,
                "reason": rules.REASON_DECEASED,
                "date_of_death": deceased[right.beneficiary_id],
                "period": period,
                "state": rules.OPEN,
                "created_at": uow.now,
                "resolved_at": None,
            }
        )
        uow.audit(
            "stop_proposal.created",
            "entitlement",
            right.id,
            {"proposal_id": proposal_id, "reason": rules.REASON_DECEASED, "period": period},
        )
    await repository.write_proposals(uow, rows)


async def complete_pass(uow: UnitOfWork, current: Pass) -> int:
    """End the pass: its holds as `RevalidationCompleted` parts (the last one marked, with how
    many were checked), the request done; how many parts. Raises PassMoved as `record_chunk`."""
    holds = await repository.holds_of(uow, current.period)
    parts = rules.parts(holds, MAX_REVALIDATION_HOLDS)
    if not await repository.finish(uow, current.period, current.after, len(parts)):
        raise PassMoved(current.period)
    for number, part in enumerate(parts, start=1):
        uow.emit(
            RevalidationCompleted(
                period=current.period,
                part=number,
                last=number == len(parts),
                checked=current.checked,
                holds=[RevalidationHold(beneficiary_id=b, outcome=o) for b, o in part],
                completed_at=uow.now,
            )
        )
    await uow.flush()
    return len(parts)


# --- stop proposals -------------------------------------------------------------------------------


async def confirm_stop_proposals(uow: IntakeUnitOfWork, entitlement_id: str) -> int:
    """The entitlement was stopped: its open proposals are CONFIRMED."""
    ids = await repository.confirm_proposals(uow, entitlement_id)
    for proposal_id in ids:
        uow.audit(
            "stop_proposal.confirmed",
            "entitlement",
            entitlement_id,
            {"proposal_id": proposal_id, "state": rules.PROPOSAL_CONFIRMED},
        )
    return len(ids)


async def stop_proposals(
    db: Executor,
    agency: str | None,
    state: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await repository.proposals_page(db, agency, state, after, limit)
    return [dict(row._mapping) for row in rows]
