"""Batches on their way to a counterparty: claimed under a lease (so two workers never send the
same batch at once), sent with the batch id as idempotency key, and their results recorded.

    READY ─claim─▶ SENDING ─accepted─▶ SUBMITTED ─(no open item)─▶ COMPLETED
    SENDING ─transient─▶ RETRY (backoff; same batch id, same references) ─claim─▶ SENDING
    SENDING ─timeout after sending / lease lost─▶ UNKNOWN ─claim─▶ INQUIRING (status per item)
    INQUIRING ─all known to the bank─▶ SUBMITTED | COMPLETED
    INQUIRING ─some never received─▶ RETRY (the same batch resent, never a new reference)
    SUBMITTED ─no callback in time─▶ INQUIRING (the sweeper asks)
    SENDING ─refused outright─▶ REJECTED (its items fail with the code)

Every claim takes the next `lease_token`; the worker renews its lease while it waits for the
counterparty, and every write it makes is fenced by that token: a worker whose lease was taken
over (it stalled past the lease) changes nothing (LeaseLost), whatever its late answer says.
An answer that does not say what the counterparty did (a duplicate, an item left in doubt)
sends the batch to UNKNOWN, so it is inquired before anything is resent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from services.payout.adapters.banks.base import DUPLICATE_CODES
from services.payout.adapters.repository import cycles as batches
from services.payout.adapters.repository import payments as repository
from services.payout.adapters.repository.payments import SEND_STATES
from services.payout.domain import model
from services.payout.domain.facts import facts_json
from services.payout.domain.model import Outcome, backoff_seconds
from services.payout.service_layer.cycles import release_holds
from services.payout.service_layer.outcomes import Applied, OutcomePolicy, apply_outcomes
from shared.events.contracts import PaymentSubmitted
from shared.outbox import json_time
from shared.periods import vietnam_date
from shared.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Claimed:
    batch_id: str
    counterparty: str
    control_count: int
    control_sum: int
    execution_date: date
    action: str  # "send" | "inquire"
    previous_state: str
    attempts: int
    inquiries: int
    lease_token: int = 0


class LeaseLost(Exception):
    """The batch was claimed by another worker after this one's lease ran out: nothing this
    worker would write may change it."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"lease of batch {batch_id} was taken over")
        self.batch_id = batch_id


async def claim_batch(
    uow: UnitOfWork, lease_seconds: float, *, sweep: bool = False
) -> Claimed | None:
    """Take one due batch: `FOR UPDATE SKIP LOCKED` then a compare-and-set to a leased state,
    committed by the caller before any call goes out. A lease that ran out means its worker
    died mid-call: the outcome is unknown, so the batch is inquired, never blindly resent."""
    row = await repository.due_batch(uow, sweep=sweep)
    if row is None:
        return None
    previous = row["state"]
    send = previous in SEND_STATES
    if not await repository.lease_batch(uow, row, send=send, lease_seconds=lease_seconds):
        return None
    return Claimed(
        batch_id=row["batch_id"],
        counterparty=row["counterparty"],
        control_count=int(row["control_count"]),
        control_sum=int(row["control_sum"]),
        execution_date=row["execution_date"],
        action="send" if send else "inquire",
        previous_state=previous,
        attempts=int(row["attempts"]) + (1 if send else 0),
        inquiries=int(row["inquiries"]) + (0 if send else 1),
        lease_token=int(row["lease_token"]) + 1,
    )


async def _fenced(uow: UnitOfWork, claimed: Claimed, **values: Any) -> None:
    """Write `values` to the batch under this claim, or raise LeaseLost."""
    if not await repository.update_held_batch(uow, claimed.batch_id, claimed.lease_token, **values):
        raise LeaseLost(claimed.batch_id)


async def hold_lease(uow: UnitOfWork, claimed: Claimed) -> None:
    """First write of every recording transaction: lock the batch row under this claim (a
    claimer skips it until we commit), or raise LeaseLost before anything else is written."""
    await _fenced(uow, claimed, updated_at=uow.now)


async def renew_lease(uow: UnitOfWork, claimed: Claimed, lease_seconds: float) -> bool:
    """Extend the lease while the counterparty is still being called; False if it was lost."""
    return await repository.update_held_batch(
        uow,
        claimed.batch_id,
        claimed.lease_token,
        lease_until=uow.now + timedelta(seconds=lease_seconds),
        updated_at=uow.now,
    )


async def batch_items(uow: UnitOfWork, batch_id: str) -> list[dict[str, Any]]:
    """Every item the batch declared (all but cancelled ones): a resend repeats them all."""
    return await repository.batch_items(uow, batch_id)


async def resolve_accounts(uow: UnitOfWork, claimed: Claimed) -> Claimed | None:
    """Before a batch is first sent, every attempt in it is checked against the beneficiary's
    current method on the day the money goes out (Vietnam time). An attempt whose method can no
    longer pay (unverified, failed, flagged, an authorisation not valid that day) is taken out of
    the batch and its installment waits with the reason; one whose method changed since the
    batch was approved (another account, another counterparty, cash) is taken out and scheduled
    again: its new attempt goes into a new batch that awaits its own approval, never into this
    approved one. The batch declares its new totals (and keeps what was taken out); an emptied
    batch is cancelled and None returned: nothing is sent. The execution date is the batch's
    (the calendar's pay date), never earlier than today.

    A resend (RETRY, after an inquiry) repeats exactly what was sent, so it resolves nothing.
    Cash-fallback attempts (attempt 2) pay at the post office by policy and are kept."""
    if claimed.action != "send" or claimed.previous_state != model.BATCH_READY:
        return claimed
    now = uow.now
    today = vietnam_date(now)
    pay_date = max(claimed.execution_date, today)
    # Fence: only the worker whose claim this is may change the batch (and it locks the row).
    await _fenced(uow, claimed, execution_date=pay_date, updated_at=now)
    await repository.lock_batch_installments(uow, claimed.batch_id)
    rows = await repository.attempts_to_resolve(uow, claimed.batch_id, today)

    def stays(r: Any) -> bool:
        return bool(
            r["usable"]
            and r["counterparty"] == claimed.counterparty
            and r["method_id"] == r["approved_method_id"]
        )

    kept = [r for r in rows if stays(r)]
    moved = [r for r in rows if not stays(r)]
    await repository.keep_in_batch(uow, kept)
    if moved:
        await repository.take_out_of_batch(uow, moved, claimed.batch_id)
        # Those whose method pays elsewhere are scheduled there at once (batched by the worker).
        await release_holds(uow, sorted({r["beneficiary_id"] for r in moved if r["usable"]}))
    count, total = await batches.batch_totals(uow, claimed.batch_id)
    if not count:
        await repository.update_batch(
            uow,
            claimed.batch_id,
            state=model.BATCH_CANCELLED,
            control_count=0,
            control_sum=0,
            lease_until=None,
            completed_at=now,
            last_error="no item left to send",
            updated_at=now,
        )
        return None
    await repository.update_batch(uow, claimed.batch_id, control_count=count, control_sum=total)
    return replace(claimed, control_count=count, control_sum=total, execution_date=pay_date)


async def open_items(uow: UnitOfWork, batch_id: str) -> list[dict[str, Any]]:
    return await repository.open_items(uow, batch_id)


async def lease_taken_over(uow: UnitOfWork, claimed: Claimed) -> bool:
    """Whether another claim came after this one (not merely: this worker released it)."""
    return await repository.lease_token(uow, claimed.batch_id) != claimed.lease_token


async def _release(uow: UnitOfWork, claimed: Claimed, **values: Any) -> None:
    await _fenced(uow, claimed, lease_until=None, updated_at=uow.now, **values)


async def mark_submitted(uow: UnitOfWork, batch_id: str, end_to_end_ids: list[str] | None) -> int:
    """Items the counterparty holds: their attempts SUBMITTED and, for installments still
    SCHEDULED, PaymentSubmitted. `None` means every waiting item of the batch. Installments are
    locked in id order first, as the callbacks do."""
    if end_to_end_ids is not None and not end_to_end_ids:
        return 0
    await repository.lock_batch_installments(uow, batch_id)
    marked = await repository.mark_attempts_submitted(uow, batch_id, end_to_end_ids)
    if not marked:
        return 0
    moved = await repository.mark_installments_submitted(uow, batch_id)
    stamp = json_time(uow.now)
    uow.emit_bulk(
        PaymentSubmitted,
        [
            {
                **facts_json(row),
                "batch_id": batch_id,
                "end_to_end_id": row["end_to_end_id"],
                "submitted_at": stamp,
            }
            for row in moved
        ],
    )
    return len(marked)


def _refusal(end_to_end_id: str, code: str, at: datetime) -> Outcome:
    """The counterparty's refusal of one item, as an outcome."""
    return Outcome(
        end_to_end_id=end_to_end_id,
        status="FAILED",
        amount=None,
        reason_code=code,
        bank_reference=None,
        occurred_at=at,
    )


async def record_accepted(
    uow: UnitOfWork,
    claimed: Claimed,
    accepted: list[str],
    rejected: list[tuple[str, str]],
    all_items: list[str],
    policy: OutcomePolicy,
    inquiry_after_seconds: float,
    *,
    in_doubt: list[str] | tuple[str, ...] = (),
    not_sent: list[str] | tuple[str, ...] = (),
    retry_base: float = 1.0,
    retry_cap: float = 60.0,
) -> Applied:
    """The counterparty answered: accepted items wait for their outcome, refused ones fail
    with the counterparty's reason. A refusal as a duplicate means it holds the payment: that
    item is in doubt, never failed. Items in doubt send the batch to UNKNOWN (inquired before
    any resend); items not taken (a list that met a transient failure) to RETRY."""
    now = uow.now
    await hold_lease(uow, claimed)
    ours = set(all_items)
    accepted_ours = [e2e for e2e in accepted if e2e in ours]
    doubtful = [e2e for e2e in in_doubt if e2e in ours]
    doubtful += [e2e for e2e, code in rejected if e2e in ours and code in DUPLICATE_CODES]
    unsent = [e2e for e2e in not_sent if e2e in ours]
    everything = (
        len(accepted_ours) == len(all_items) and not rejected and not doubtful and not unsent
    )
    await mark_submitted(uow, claimed.batch_id, None if everything else accepted_ours)
    refusals = [
        _refusal(e2e, code, now)
        for e2e, code in rejected
        if e2e in ours and code not in DUPLICATE_CODES
    ]
    applied = await apply_outcomes(uow, claimed.counterparty, refusals, policy)
    taken = {"submitted_at": now} if accepted_ours else {}
    if doubtful:
        await _release(
            uow,
            claimed,
            state=model.BATCH_UNKNOWN,
            next_attempt_at=now,
            **taken,
            last_error=f"{len(doubtful)} items in doubt after the answer; asking their status",
        )
    elif unsent:
        delay = backoff_seconds(claimed.attempts, retry_base, retry_cap)
        await _release(
            uow,
            claimed,
            state=model.BATCH_RETRY,
            next_attempt_at=now + timedelta(seconds=delay),
            **taken,
            last_error=f"{len(unsent)} items not taken; sending them again",
        )
    else:
        await _release(
            uow,
            claimed,
            state=model.BATCH_SUBMITTED,
            submitted_at=now,
            next_attempt_at=now + timedelta(seconds=inquiry_after_seconds),
            last_error=None,
        )
    return applied


async def record_retry(
    uow: UnitOfWork, claimed: Claimed, error: str, base: float, cap: float
) -> None:
    """Nothing happened at the counterparty: the same batch goes again after a backoff."""
    await hold_lease(uow, claimed)
    delay = backoff_seconds(claimed.attempts, base, cap)
    await _release(
        uow,
        claimed,
        state=model.BATCH_RETRY,
        next_attempt_at=uow.now + timedelta(seconds=delay),
        last_error=error[:300],
    )


async def record_unknown(uow: UnitOfWork, claimed: Claimed, error: str) -> None:
    """Sent, but no answer: ask for each item's status before anything is resent."""
    await hold_lease(uow, claimed)
    await _release(
        uow, claimed, state=model.BATCH_UNKNOWN, next_attempt_at=uow.now, last_error=error[:300]
    )


async def record_refused(
    uow: UnitOfWork, claimed: Claimed, code: str, items: list[str], policy: OutcomePolicy
) -> Applied:
    """The counterparty refused the whole request: its items fail with the code."""
    await hold_lease(uow, claimed)
    applied = await apply_outcomes(
        uow, claimed.counterparty, [_refusal(e2e, code, uow.now) for e2e in items], policy
    )
    await _release(
        uow, claimed, state=model.BATCH_REJECTED, last_error=code[:300], completed_at=uow.now
    )
    return applied


async def record_not_sent(uow: UnitOfWork, claimed: Claimed, error: str) -> None:
    """We refuse to send a batch whose items differ from its declared totals; its items stay
    visibly pending for a person to look at."""
    await hold_lease(uow, claimed)
    await _release(uow, claimed, state=model.BATCH_REJECTED, last_error=f"{error} (not sent)"[:300])


@dataclass
class InquiryFindings:
    outcomes: list[Outcome]
    pending: list[str]  # the counterparty holds them, no outcome yet
    never_received: list[str]  # UNKNOWN_TO_BANK
    undetermined: list[str]  # the inquiry itself failed


async def record_inquiry(
    uow: UnitOfWork,
    claimed: Claimed,
    findings: InquiryFindings,
    policy: OutcomePolicy,
    *,
    retry_base: float,
    retry_cap: float,
    inquiry_after_seconds: float,
) -> str:
    """Apply what the status inquiries found and decide the batch's next step; returns it."""
    now = uow.now
    await hold_lease(uow, claimed)
    await apply_outcomes(uow, claimed.counterparty, findings.outcomes, policy)
    if findings.pending:
        await mark_submitted(uow, claimed.batch_id, findings.pending)
    if findings.undetermined:
        # Still unknown: ask again later; nothing is resent while any item is in doubt.
        state = (
            model.BATCH_UNKNOWN
            if claimed.previous_state != model.BATCH_SUBMITTED
            else model.BATCH_SUBMITTED
        )
        delay = backoff_seconds(claimed.inquiries, retry_base, retry_cap)
        await _release(
            uow,
            claimed,
            state=state,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error="status inquiry failed",
        )
        return state
    if findings.never_received:
        # The counterparty never got them: the very same batch goes again (after a backoff, so
        # a counterparty that refuses the resend and still cannot find them is not hammered).
        delay = backoff_seconds(claimed.inquiries, retry_base, retry_cap)
        await _release(
            uow,
            claimed,
            state=model.BATCH_RETRY,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error="items unknown to the counterparty; resending the same batch",
        )
        return model.BATCH_RETRY
    if await open_items(uow, claimed.batch_id):
        delay = min(retry_cap * 4, inquiry_after_seconds * (2 ** min(claimed.inquiries, 6)))
        await _release(
            uow,
            claimed,
            state=model.BATCH_SUBMITTED,
            next_attempt_at=now + timedelta(seconds=delay),
        )
        return model.BATCH_SUBMITTED
    await _release(uow, claimed, state=model.BATCH_COMPLETED, completed_at=now)
    return model.BATCH_COMPLETED


async def record_resend_refused(
    uow: UnitOfWork,
    claimed: Claimed,
    code: str,
    findings: InquiryFindings,
    policy: OutcomePolicy,
    *,
    retry_base: float,
    retry_cap: float,
    inquiry_after_seconds: float,
) -> str:
    """A resend was refused, and each item's status asked at once: an earlier send may have
    been taken. Only an item the counterparty both refused and does not hold fails (with the
    refusal's code); the others follow their status, as after any inquiry."""
    failures = [] if code in DUPLICATE_CODES else findings.never_received
    settled = InquiryFindings(
        outcomes=findings.outcomes + [_refusal(e2e, code, uow.now) for e2e in failures],
        pending=findings.pending,
        never_received=[e2e for e2e in findings.never_received if e2e not in failures],
        undetermined=findings.undetermined,
    )
    return await record_inquiry(
        uow,
        claimed,
        settled,
        policy,
        retry_base=retry_base,
        retry_cap=retry_cap,
        inquiry_after_seconds=inquiry_after_seconds,
    )


async def complete_if_done(uow: UnitOfWork, claimed: Claimed) -> bool:
    """A submitted batch whose items all have their outcome needs no inquiry."""
    await hold_lease(uow, claimed)
    if await open_items(uow, claimed.batch_id):
        return False
    await _release(uow, claimed, state=model.BATCH_COMPLETED, completed_at=uow.now)
    return True
