"""Cycles: every active entitlement yields exactly one installment per period (the database's
unique key makes sure of it), each installment with a usable payment method gets its first
attempt, and attempts are grouped per agency and counterparty into batches with control totals.
Every batch is made PREPARED: it awaits a second officer's approval (`service_layer/approvals.py`)
and submission never claims it before. Whatever is made after an approval (released holds,
cash fallbacks, a new method's attempt) goes into new PREPARED batches: a supplementary part that
awaits its own approval, never into an approved batch.

The statements are set-based and live in `adapters/repository/cycles.py`. Handlers execute on
the caller's unit of work and emit events; the boundary owns the transaction (a cycle's
creation asks it for one transaction per chunk).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from services.payout.adapters.repository import approvals as calendar
from services.payout.adapters.repository import cycles as repository
from services.payout.adapters.repository.cycles import Batched, Row
from services.payout.domain import model
from services.payout.domain.methods import counterparty_of, method_usable
from services.payout.service_layer.common import facts, facts_json
from services.payout.service_layer.revalidation import apply_identity_holds
from shared.events.contracts import CycleOpened, InstallmentCancelled, InstallmentScheduled
from shared.outbox import json_time
from shared.periods import vietnam_date
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")


class Transact(Protocol):
    """The boundary's way to run one piece of work in its own unit of work, committed."""

    async def __call__(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T: ...


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one chunk of a cycle's creation made."""

    through: str | None  # the last entitlement id it covered; None: it ran to the end
    new_installments: int
    scheduled: int
    batches: int
    duplicates_held: int


@dataclass(frozen=True, slots=True)
class CycleStarted:
    cycle_id: int
    period: str
    created: bool  # False: the cycle existed already
    new_installments: int
    scheduled: int
    on_hold: int
    batches: int
    duplicates_held: int = 0  # of on_hold: another entitlement of the scheme pays the person


async def start_cycle(
    transact: Transact, period: str, started_by: str, batch_size: int, chunk_size: int
) -> CycleStarted:
    """Open the cycle for `period` (or find it) and create what is missing: installments for
    active entitlements, first attempts, batches. A chunk of `chunk_size` entitlements (in id
    order) is one transaction with its events, so memory and transactions stay bounded however
    large the cycle, and the first batches can be sent while the rest is made. Run twice, or
    twice at once, it creates nothing the first run created (the unique keys see to it)."""
    cycle_id, created = await transact(lambda uow: open_cycle(uow, period, started_by))
    chunks: list[Chunk] = []
    after: str | None = ""  # entitlement ids are never empty: the first chunk starts at the first
    while after is not None:
        chunk = await transact(
            partial(
                make_installments,
                cycle_id=cycle_id,
                period=period,
                after=after,
                chunk_size=chunk_size,
                batch_size=batch_size,
            )
        )
        chunks.append(chunk)
        after = chunk.through
    leftover = await transact(lambda uow: finish_creation(uow, cycle_id, period, batch_size))
    new = sum(c.new_installments for c in chunks)
    scheduled = sum(c.scheduled for c in chunks)
    return CycleStarted(
        cycle_id=cycle_id,
        period=period,
        created=created,
        new_installments=new,
        scheduled=scheduled,
        on_hold=new - scheduled,
        batches=sum(c.batches for c in chunks) + leftover,
        duplicates_held=sum(c.duplicates_held for c in chunks),
    )


async def open_cycle(uow: UnitOfWork, period: str, started_by: str) -> tuple[int, bool]:
    """The cycle of `period`, created unless it exists: its id, and whether this call made it.
    The first opening asks intake to revalidate the identities of the people it pays
    (CycleOpened); a later one records its caller as who prepares what awaits approval now (a
    rejected part is prepared again this way)."""
    entry = await calendar.calendar_entry(uow, period)
    pay_date = entry["pay_date"] if entry else None
    created = await repository.open_cycle(uow, period, started_by, pay_date)
    cycle_id = await repository.lock_cycle(uow, period)
    if created:
        uow.emit(CycleOpened(period=period, opened_at=uow.now))
    else:
        await repository.set_preparer(uow, cycle_id, started_by)
        if entry is not None:
            await repository.set_cycle_pay_date(uow, cycle_id, pay_date)
    return cycle_id, created


async def make_installments(
    uow: UnitOfWork, cycle_id: int, period: str, after: str, chunk_size: int, batch_size: int
) -> Chunk:
    """One chunk of the cycle: the installments missing for the next `chunk_size` entitlements
    due after the id `after`, their events, first attempts and batches. The cycle's row is
    locked first, so two runs for one period take turns chunk by chunk."""
    await repository.lock_cycle(uow, period)
    through = await repository.chunk_end(uow, period, after, chunk_size)
    # The batches made now are sent today: methods are judged on today's Vietnam date.
    inserted = await repository.insert_installments(
        uow, cycle_id, period, vietnam_date(uow.now), after, through
    )
    scheduled = [row for row in inserted if row["state"] == model.SCHEDULED]
    duplicates = await _record_duplicates(uow, cycle_id, inserted)
    stamp = json_time(uow.now)
    uow.emit_bulk(
        InstallmentScheduled, [{**facts_json(row), "scheduled_at": stamp} for row in scheduled]
    )
    batch_count = await _attempt_and_batch(uow, cycle_id, period, scheduled, batch_size)
    return Chunk(through, len(inserted), len(scheduled), batch_count, duplicates)


async def finish_creation(uow: UnitOfWork, cycle_id: int, period: str, batch_size: int) -> int:
    """After the last chunk: batches for attempts still waiting for one, and the cycle marked
    as fully created; how many batches that made."""
    await repository.lock_cycle(uow, period)
    made = await assign_batches(uow, cycle_id, period, batch_size)
    held = await apply_identity_holds(uow, cycle_id, period)
    if held:
        log.warning(
            "installments held by the identity revalidation",
            extra={"fields": {"cycle_id": cycle_id, "held": held}},
        )
    await repository.finish_creation(uow, cycle_id)
    return made


async def _record_duplicates(uow: UnitOfWork, cycle_id: int, inserted: Sequence[Row]) -> int:
    """One DUPLICATE_ENTITLEMENT anomaly per installment just held as a duplicate; how many."""
    held = [
        row["id"]
        for row in inserted
        if row["state"] == model.ON_HOLD and row["hold_reason"] == model.HOLD_DUPLICATE_ENTITLEMENT
    ]
    if not held:
        return 0
    await repository.record_duplicate_anomalies(uow, cycle_id, (min(held), max(held)))
    log.warning(
        "installments held: another entitlement of the scheme pays the person this period",
        extra={"fields": {"cycle_id": cycle_id, "held": len(held)}},
    )
    return len(held)


async def _attempt_and_batch(
    uow: UnitOfWork, cycle_id: int, period: str, scheduled: Sequence[Row], batch_size: int
) -> int:
    """First attempts for the installments just scheduled, each put in its batch as it is
    created; how many batches that made."""
    if not scheduled:
        return 0
    ids = [row["id"] for row in scheduled]
    prefix = await _next_batch_prefix(uow, cycle_id)
    assigned = await repository.insert_first_attempts(
        uow, cycle_id=cycle_id, id_range=(min(ids), max(ids)), batching=(prefix, batch_size)
    )
    return await _insert_batches(uow, cycle_id, period, assigned)


async def assign_batches(uow: UnitOfWork, cycle_id: int, period: str, batch_size: int) -> int:
    """Group a cycle's attempts that wait without a batch into PREPARED batches of at most
    `batch_size` per agency and counterparty, each declaring its count and sum."""
    prefix = await _next_batch_prefix(uow, cycle_id)
    assigned = await repository.batch_waiting_attempts(uow, cycle_id, prefix, batch_size)
    return await _insert_batches(uow, cycle_id, period, assigned)


async def _next_batch_prefix(uow: UnitOfWork, cycle_id: int) -> str:
    """Batch ids are `B<cycle>-<run>-<agency>-<counterparty>-<chunk>`: unique, and at most 35
    characters (ISO 20022's limit)."""
    run = await repository.next_batch_run(uow, cycle_id)
    return f"B{cycle_id}-{run}-"


def batch_agency(batch_id: str) -> str:
    """The agency a batch id names (`B<cycle>-<run>-<agency>-<counterparty>-<chunk>`)."""
    return batch_id.split("-")[2]


def batch_totals(assigned: Sequence[Batched]) -> dict[str, tuple[str, str, int, int]]:
    """Per batch id: its agency, counterparty, and the count and sum of the attempts put in it."""
    totals: dict[str, tuple[str, str, int, int]] = {}
    for batch_id, counterparty, amount in assigned:
        agency, _, count, total = totals.get(batch_id, (batch_agency(batch_id), counterparty, 0, 0))
        totals[batch_id] = (agency, counterparty, count + 1, total + int(amount))
    return totals


async def _insert_batches(
    uow: UnitOfWork, cycle_id: int, period: str, assigned: Sequence[Batched]
) -> int:
    """One PREPARED batch row per batch id, declaring the count and sum of the attempts put in
    it, executed on the cycle's pay date (never before today), prepared by whoever acts."""
    if not assigned:
        return 0
    totals = batch_totals(assigned)
    today = vietnam_date(uow.now)
    pay_date = await repository.cycle_pay_date(uow, cycle_id)
    execution = max(pay_date, today) if pay_date is not None else today
    await repository.insert_batches(uow, cycle_id, period, totals, execution, uow.actor)
    return len(totals)


async def assign_pending_batches(uow: UnitOfWork, batch_size: int) -> int:
    """Batches for attempts created after their cycle started (released holds, cash
    fallbacks): PREPARED, a supplementary part awaiting its own approval."""
    made = 0
    for cycle_id, period in await repository.cycles_with_unbatched_attempts(uow):
        made += await assign_batches(uow, cycle_id, period, batch_size)
    return made


async def release_holds(uow: UnitOfWork, beneficiary_ids: Sequence[str]) -> int:
    """Installments waiting for a method are scheduled once their beneficiary has a usable one
    (their batches are made by the submission worker); the others get their current reason."""
    if not beneficiary_ids:
        return 0
    held = await repository.held_for_a_method(uow, beneficiary_ids)
    if not held:
        return 0
    methods = await repository.current_methods(uow, {row["beneficiary_id"] for row in held})
    released: list[dict[str, Any]] = []
    pay_date = vietnam_date(uow.now)  # released installments are batched and sent now
    for row in held:
        method = methods.get(row["beneficiary_id"])
        usable, reason = method_usable(method, pay_date)
        if method is None or not usable:
            if reason != row["hold_reason"]:
                await repository.set_hold_reason(uow, row["id"], reason)
            continue
        counterparty = counterparty_of(method)
        await repository.schedule_held(uow, row["id"], method, counterparty)
        released.append({**row, "channel": method["method"], "counterparty": counterparty})
    if released:
        await repository.insert_first_attempts(uow, installment_ids=[row["id"] for row in released])
        uow.emit(*(InstallmentScheduled(**facts(row), scheduled_at=uow.now) for row in released))
    return len(released)


async def stop_entitlements(
    uow: UnitOfWork,
    *,
    from_period: str,
    reason: str,
    entitlement_ids: Sequence[str] | None = None,
    beneficiary_id: str | None = None,
) -> int:
    """No installment from `from_period` on; those already made but not yet sent are
    cancelled. Returns how many were cancelled."""
    stopped = await repository.stop_entitlements(
        uow, from_period, reason, entitlement_ids=entitlement_ids, beneficiary_id=beneficiary_id
    )
    ids = list(entitlement_ids) if entitlement_ids is not None else stopped
    if beneficiary_id is not None:
        ids = await repository.entitlement_ids_of(uow, beneficiary_id)
    return await cancel_unsent(uow, ids, from_period, reason)


async def cancel_unsent(
    uow: UnitOfWork, entitlement_ids: Sequence[str], from_period: str, reason: str
) -> int:
    """Cancel installments of these entitlements from `from_period` on that no bank has seen:
    on hold, or scheduled in a batch never sent. A batch that lost items gets new totals."""
    if not entitlement_ids:
        return 0
    cancellable = await _unseen_by_any_bank(uow, entitlement_ids, from_period)
    if not cancellable:
        return 0
    await repository.cancel_installments(uow, [row["id"] for row in cancellable], reason)
    attempt_ids = [row["attempt_id"] for row in cancellable if row["attempt_id"] is not None]
    if attempt_ids:
        await repository.cancel_attempts(uow, attempt_ids)
    for batch_id in sorted({row["batch_id"] for row in cancellable if row["batch_id"]}):
        await repository.recount_batch(uow, batch_id)
    announced = [row for row in cancellable if row["state"] == model.SCHEDULED]
    if announced:
        uow.emit(
            *(
                InstallmentCancelled(**facts(row), reason=reason, cancelled_at=uow.now)
                for row in announced
            )
        )
    return len(cancellable)


async def _unseen_by_any_bank(
    uow: UnitOfWork, entitlement_ids: Sequence[str], from_period: str
) -> list[Row]:
    """The installments `cancel_unsent` may cancel, locked: on hold, without a batch, or in a
    batch never sent."""
    rows = await repository.unsent_installments(uow, entitlement_ids, from_period)
    if not rows:
        return []
    batch_ids = sorted({row["batch_id"] for row in rows if row["batch_id"]})
    never_sent = await repository.never_sent_batches(uow, batch_ids) if batch_ids else set()
    return [
        row
        for row in rows
        if row["state"] == model.ON_HOLD or row["batch_id"] is None or row["batch_id"] in never_sent
    ]
