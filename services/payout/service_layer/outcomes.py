"""Outcomes of payments (callbacks, status inquiries, refusals at intake) applied in bulk: one
transaction for a whole delivery, a final state never goes back, a replayed event id changes
nothing, and every state change emits its event into the outbox in the same transaction.

What the outcomes do is decided by `domain.outcomes.decide`; this reads the rows it needs and
writes what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.payout.adapters.repository import payments as repository
from services.payout.domain import model
from services.payout.domain.model import Outcome
from services.payout.domain.outcomes import Applied, OutcomePolicy, decide, each_of_rejected_files
from services.payout.service_layer.cycles import stop_entitlements
from shared.events.contracts import PaymentPaidInCash, PaymentSettled
from shared.periods import next_period
from shared.uow import UnitOfWork

__all__ = ["Applied", "OutcomePolicy", "apply_outcomes", "record_callback"]


async def record_callback(
    uow: UnitOfWork,
    counterparty: str,
    delivery_id: str,
    outcomes: Sequence[Outcome],
    policy: OutcomePolicy,
) -> Applied:
    """Keep each event id once per counterparty and apply only the new ones. Event ids are
    inserted in sorted order, then installments are locked in id order: two deliveries of
    the same events queue behind each other instead of deadlocking."""
    first: dict[str, Outcome] = {}
    for outcome in outcomes:
        assert outcome.event_id is not None
        first.setdefault(outcome.event_id, outcome)
    fresh = await repository.keep_new_callback_events(
        uow,
        [
            {
                "counterparty": counterparty,
                "event_id": event_id,
                "delivery_id": delivery_id,
                "end_to_end_id": outcome.end_to_end_id[:64],
                "status": outcome.status,
                "amount": outcome.amount if outcome.amount is not None else 0,
                "occurred_at": outcome.occurred_at,
                "received_at": uow.now,
            }
            for event_id, outcome in sorted(first.items())
        ],
    )
    todo = [o for o in outcomes if o.event_id in fresh and first[o.event_id] is o]
    result = await apply_outcomes(uow, counterparty, todo, policy)
    result.received = len(outcomes)
    result.replayed = len(outcomes) - len(todo)
    return result


async def apply_outcomes(
    uow: UnitOfWork, counterparty: str, outcomes: Sequence[Outcome], policy: OutcomePolicy
) -> Applied:
    if not outcomes:
        return Applied(received=0)
    received = len(outcomes)
    files = {o.end_to_end_id for o in outcomes if o.status == model.FILE_REJECTED}
    if files:
        outcomes = each_of_rejected_files(
            outcomes, await repository.files_members(uow, counterparty, files)
        )
    rows = await repository.payments_named(uow, {o.end_to_end_id for o in outcomes})
    changes, events = decide(rows, outcomes, counterparty, policy, uow.now)
    changes.applied.received = received  # as reported: a rejected file counts once

    await repository.update_installments(uow, changes.installments)
    await repository.update_attempts(uow, changes.attempts)
    await repository.create_cash_attempts(uow, changes.to_post_office)
    await repository.flag_methods(uow, changes.flagged_methods)
    await repository.add_anomalies(uow, changes.anomalies)
    # Settlements first: an installment settled then returned in one delivery keeps that order
    # (the outbox writes what was emitted before, then the bulk events, at each flush).
    await uow.flush()
    uow.emit_bulk(PaymentSettled, events.settled)
    uow.emit_bulk(PaymentPaidInCash, events.paid_in_cash)
    await uow.flush()
    uow.emit(*events.others)
    for beneficiary_id, period in changes.holders_deceased:
        await stop_entitlements(
            uow,
            beneficiary_id=beneficiary_id,
            from_period=next_period(period),
            reason="HOLDER_DECEASED",
        )
    return changes.applied
