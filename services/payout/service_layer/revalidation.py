"""Identity revalidation before payment: intake's answers for a period (`RevalidationCompleted`
parts) kept, whether the period is fully revalidated, and the holds applied to its cycle.

A held person's installments of the period wait (ON_HOLD) with HOLDER_DECEASED,
IDENTITY_MISMATCH or IDENTITY_NOT_FOUND, a reason no payment method lifts: a SCHEDULED one whose
attempt is in no batch yet or in a batch still PREPARED loses its attempt (CANCELLED, out of the
batch, whose control totals are recounted) and is announced cancelled to reporting, as a stop
before sending is; one already waiting for a method takes the identity reason. An approved or
sent batch is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import RowMapping

from services.payout.adapters.repository import cycles as cycle_repository
from services.payout.adapters.repository import identity as repository
from services.payout.adapters.repository import payments as payment_repository
from services.payout.domain.facts import facts
from services.payout.domain.identity import hold_reason
from shared.events.contracts import InstallmentCancelled, RevalidationCompleted
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


async def revalidation_done(uow: UnitOfWork, period: str) -> bool:
    """Whether intake has revalidated every beneficiary of `period`: its last part arrived, and
    every part before it."""
    count, last = await repository.parts_received(uow, period)
    return last is not None and count >= last


async def record_revalidation(uow: UnitOfWork, event: RevalidationCompleted) -> int:
    """Keep a part of intake's answer and hold what it names in the period's cycle, if there is
    one yet (else its creation does); how many installments this held. A part received again
    changes nothing."""
    holds = [(h.beneficiary_id, h.outcome) for h in event.holds]
    if not await repository.record_part(
        uow, event.period, event.part, event.last, event.checked, len(holds), event.completed_at
    ):
        return 0
    await repository.record_holds(uow, event.period, holds)
    cycle_id = await repository.locked_cycle(uow, event.period)
    if cycle_id is None:
        return 0
    return await apply_identity_holds(uow, cycle_id, event.period)


async def apply_identity_holds(uow: UnitOfWork, cycle_id: int, period: str) -> int:
    """Hold the cycle's installments of people intake found deceased, mismatched or unknown;
    how many were held (0 when called again)."""
    candidates = await repository.scheduled_to_hold(uow, cycle_id, period)
    batch_ids = sorted({row["batch_id"] for row in candidates if row["batch_id"]})
    still_prepared = await repository.prepared_batches(uow, batch_ids)
    taken = [
        row for row in candidates if row["batch_id"] is None or row["batch_id"] in still_prepared
    ]
    await payment_repository.hold_installments(
        uow, [(row["id"], hold_reason(row["outcome"])) for row in taken]
    )
    await repository.cancel_attempts_out_of_batches(uow, [row["attempt_id"] for row in taken])
    touched = sorted({row["batch_id"] for row in taken if row["batch_id"]})
    for batch_id in touched:
        await cycle_repository.recount_batch(uow, batch_id)
    _announce(uow, taken)
    waiting = await repository.waiting_to_relabel(uow, cycle_id, period)
    await repository.relabel_held(
        uow, [(row["id"], hold_reason(row["outcome"])) for row in waiting]
    )
    held = len(taken) + len(waiting)
    if held:
        log.info(
            "installments held by identity revalidation",
            extra={
                "fields": {
                    "cycle_id": cycle_id,
                    "period": period,
                    "taken_out_of_batches": len(taken),
                    "batches_recounted": len(touched),
                    "already_waiting": len(waiting),
                }
            },
        )
    return held


def _announce(uow: UnitOfWork, taken: Sequence[RowMapping]) -> None:
    """Reporting counted these as scheduled: they are no longer to be paid in this cycle."""
    if taken:
        uow.emit(
            *(
                InstallmentCancelled(
                    **facts(dict(row)), reason=hold_reason(row["outcome"]), cancelled_at=uow.now
                )
                for row in taken
            )
        )
