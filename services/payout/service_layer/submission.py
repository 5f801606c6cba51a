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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.adapters.banks.base import DUPLICATE_CODES
from services.payout.adapters.orm import batches, installments, payment_attempts
from services.payout.adapters.outbox_writer import add_many, json_time
from services.payout.domain import model
from services.payout.domain.model import Outcome, backoff_seconds
from services.payout.domain.periods import vn_date
from services.payout.service_layer.common import facts_json, is_sqlite_session
from services.payout.service_layer.cycles import (
    _counterparty_sql,
    _hold_reason_sql,
    _payee_sql,
    _usable_sql,
    release_holds,
)
from services.payout.service_layer.outcomes import Applied, OutcomePolicy, apply_outcomes
from shared.events.contracts import PaymentSubmitted
from shared.outbox import Outbox

SEND_STATES = (model.BATCH_READY, model.BATCH_RETRY)
LEASED_STATES = (model.BATCH_SENDING, model.BATCH_INQUIRING)


@dataclass(frozen=True, slots=True)
class Claimed:
    batch_id: str
    counterparty: str
    control_count: int
    control_sum: int
    execution_date: Any
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
    session: AsyncSession, now: datetime, lease_seconds: float, *, sweep: bool = False
) -> Claimed | None:
    """Take one due batch: `FOR UPDATE SKIP LOCKED` then a compare-and-set to a leased state,
    committed by the caller before any call goes out. A lease that ran out means its worker
    died mid-call: the outcome is unknown, so the batch is inquired, never blindly resent."""
    if sweep:
        due = and_(batches.c.state == model.BATCH_SUBMITTED, batches.c.next_attempt_at <= now)
    else:
        due = or_(
            and_(
                batches.c.state.in_([*SEND_STATES, model.BATCH_UNKNOWN]),
                batches.c.next_attempt_at <= now,
            ),
            and_(batches.c.state.in_(LEASED_STATES), batches.c.lease_until < now),
        )
    query = select(batches).where(due).order_by(batches.c.next_attempt_at, batches.c.batch_id).limit(1)
    if not is_sqlite_session(session):
        query = query.with_for_update(skip_locked=True)
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None
    previous = row["state"]
    action = "send" if previous in SEND_STATES else "inquire"
    values: dict[str, Any] = {
        "lease_until": now + timedelta(seconds=lease_seconds),
        "lease_token": batches.c.lease_token + 1,
        "updated_at": now,
    }
    if action == "send":
        values.update(state=model.BATCH_SENDING, attempts=batches.c.attempts + 1)
    else:
        values.update(state=model.BATCH_INQUIRING, inquiries=batches.c.inquiries + 1)
    taken = await session.execute(
        update(batches)
        .where(batches.c.batch_id == row["batch_id"], batches.c.state == previous)
        .where(batches.c.attempts == row["attempts"], batches.c.inquiries == row["inquiries"])
        .values(**values)
    )
    if taken.rowcount != 1:
        return None
    return Claimed(
        batch_id=row["batch_id"],
        counterparty=row["counterparty"],
        control_count=int(row["control_count"]),
        control_sum=int(row["control_sum"]),
        execution_date=row["execution_date"],
        action=action,
        previous_state=previous,
        attempts=int(row["attempts"]) + (1 if action == "send" else 0),
        inquiries=int(row["inquiries"]) + (0 if action == "send" else 1),
        lease_token=int(row["lease_token"]) + 1,
    )


def _held(claimed: Claimed):
    """The batch still under this claim: leased, with the claim's token."""
    return and_(
        batches.c.batch_id == claimed.batch_id,
        batches.c.lease_token == claimed.lease_token,
        batches.c.state.in_(LEASED_STATES),
    )


async def hold_lease(session: AsyncSession, claimed: Claimed, now: datetime) -> None:
    """First write of every recording transaction: lock the batch row under this claim (a
    claimer skips it until we commit), or raise LeaseLost before anything else is written."""
    held = await session.execute(update(batches).where(_held(claimed)).values(updated_at=now))
    if held.rowcount != 1:
        raise LeaseLost(claimed.batch_id)


async def renew_lease(session: AsyncSession, claimed: Claimed, now: datetime, lease_seconds: float) -> bool:
    """Extend the lease while the counterparty is still being called; False if it was lost."""
    renewed = await session.execute(
        update(batches).where(_held(claimed))
        .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
    )
    return renewed.rowcount == 1


async def batch_items(session: AsyncSession, batch_id: str) -> list[dict[str, Any]]:
    """Every item the batch declared (all but cancelled ones): a resend repeats them all."""
    return [
        dict(row)
        for row in (
            await session.execute(
                select(payment_attempts)
                .where(
                    payment_attempts.c.batch_id == batch_id,
                    payment_attempts.c.state != model.CANCELLED,
                )
                .order_by(payment_attempts.c.id)
            )
        ).mappings()
    ]

async def resolve_accounts(
    session: AsyncSession, outbox: Outbox, claimed: Claimed, now: datetime
) -> Claimed | None:
    """Before a batch is first sent, every attempt in it takes the beneficiary's current method,
    checked on the day the money goes out (Vietnam time). An attempt whose method can no longer
    pay (unverified, failed, flagged, an authorisation not valid that day) is taken out of the
    batch and its installment waits with the reason; one whose method now pays through another
    counterparty (another bank, cash) is taken out and scheduled there. The batch declares its
    new totals; an emptied batch is cancelled and None returned: nothing is sent.

    A resend (RETRY, after an inquiry) repeats exactly what was sent, so it resolves nothing.
    Cash-fallback attempts (attempt 2) pay at the post office by policy and are kept."""
    if claimed.action != "send" or claimed.previous_state != model.BATCH_READY:
        return claimed
    pay_date = vn_date(now)
    # Fence: only the worker whose claim this is may change the batch (and it locks the row).
    fenced = await session.execute(
        update(batches).where(_held(claimed)).values(execution_date=pay_date, updated_at=now)
    )
    if fenced.rowcount != 1:
        raise LeaseLost(claimed.batch_id)
    lock = select(installments.c.id).where(
        installments.c.id.in_(
            select(payment_attempts.c.installment_id).where(payment_attempts.c.batch_id == claimed.batch_id)
        )
    ).order_by(installments.c.id)
    if not is_sqlite_session(session):
        await session.execute(lock.with_for_update())
    account_number, account_name = _payee_sql()
    rows = (
        await session.execute(
            text(
                f"""
                SELECT a.id AS attempt_id, i.id AS installment_id, i.beneficiary_id,
                       CASE WHEN {_usable_sql()} THEN 1 ELSE 0 END AS usable,
                       CASE WHEN {_usable_sql()} THEN NULL ELSE {_hold_reason_sql()} END AS reason,
                       {_counterparty_sql()} AS counterparty, pm.method, pm.method_id,
                       {account_number} AS account_number, {account_name} AS account_name
                FROM payment_attempts a
                JOIN installments i ON i.id = a.installment_id AND i.attempt_no = a.attempt_no
                LEFT JOIN payment_methods pm ON pm.beneficiary_id = i.beneficiary_id
                LEFT JOIN beneficiaries b ON b.beneficiary_id = i.beneficiary_id
                WHERE a.batch_id = :batch_id AND a.state = 'CREATED' AND a.attempt_no = 1
                  AND i.state = 'SCHEDULED'
                ORDER BY a.id
                """
            ),
            {"batch_id": claimed.batch_id, "pay_date": pay_date},
        )
    ).mappings().all()
    kept = [r for r in rows if r["usable"] and r["counterparty"] == claimed.counterparty]
    moved = [r for r in rows if not (r["usable"] and r["counterparty"] == claimed.counterparty)]
    if kept:
        await session.execute(
            update(payment_attempts)
            .where(payment_attempts.c.id == bindparam("a_id"))
            .values(channel=bindparam("a_channel"), account_number=bindparam("a_account"),
                    account_name=bindparam("a_name")),
            [{"a_id": r["attempt_id"], "a_channel": r["method"], "a_account": r["account_number"],
              "a_name": r["account_name"]} for r in kept],
        )
        await session.execute(
            update(installments)
            .where(installments.c.id == bindparam("i_id"))
            .values(channel=bindparam("i_channel"), method_id=bindparam("i_method"), updated_at=now),
            [{"i_id": r["installment_id"], "i_channel": r["method"], "i_method": r["method_id"]} for r in kept],
        )
    if moved:
        # Never seen by any counterparty (the batch was never sent): the attempt goes, and the
        # installment waits as if its cycle had just found this method.
        await session.execute(
            payment_attempts.delete().where(payment_attempts.c.id.in_([r["attempt_id"] for r in moved]))
        )
        await session.execute(
            update(installments)
            .where(installments.c.id == bindparam("i_id"), installments.c.state == model.SCHEDULED)
            .values(state=model.ON_HOLD, hold_reason=bindparam("i_reason"), attempt_no=0, channel=None,
                    counterparty=None, method_id=None, updated_at=now),
            [{"i_id": r["installment_id"], "i_reason": r["reason"] or model.HOLD_METHOD_CHANGED} for r in moved],
        )
        # Those whose method pays elsewhere are scheduled there at once (batched by the worker).
        await release_holds(
            session, outbox, sorted({r["beneficiary_id"] for r in moved if r["usable"]}), now
        )
    count, total = (
        await session.execute(
            text(
                "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payment_attempts "
                "WHERE batch_id = :b AND state <> 'CANCELLED'"
            ),
            {"b": claimed.batch_id},
        )
    ).one()
    if not count:
        await session.execute(
            update(batches)
            .where(batches.c.batch_id == claimed.batch_id)
            .values(state=model.BATCH_CANCELLED, control_count=0, control_sum=0, lease_until=None,
                    completed_at=now, last_error="no item left to send", updated_at=now)
        )
        return None
    await session.execute(
        update(batches)
        .where(batches.c.batch_id == claimed.batch_id)
        .values(control_count=int(count), control_sum=int(total))
    )
    return replace(claimed, control_count=int(count), control_sum=int(total), execution_date=pay_date)


async def open_items(session: AsyncSession, batch_id: str) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in (
            await session.execute(
                select(payment_attempts.c.end_to_end_id, payment_attempts.c.state)
                .where(
                    payment_attempts.c.batch_id == batch_id,
                    payment_attempts.c.state.in_(list(model.ATTEMPT_OPEN)),
                )
                .order_by(payment_attempts.c.id)
            )
        ).mappings()
    ]


async def lease_taken_over(session: AsyncSession, claimed: Claimed) -> bool:
    """Whether another claim came after this one (not merely: this worker released it)."""
    token = (
        await session.execute(select(batches.c.lease_token).where(batches.c.batch_id == claimed.batch_id))
    ).scalar_one_or_none()
    return token != claimed.lease_token


async def _release(session: AsyncSession, claimed: Claimed, now: datetime, **values: Any) -> None:
    released = await session.execute(
        update(batches).where(_held(claimed)).values(lease_until=None, updated_at=now, **values)
    )
    if released.rowcount != 1:
        raise LeaseLost(claimed.batch_id)


async def mark_submitted(
    session: AsyncSession,
    outbox: Outbox,
    batch_id: str,
    end_to_end_ids: list[str] | None,
    now: datetime,
) -> int:
    """Items the counterparty holds: their attempts SUBMITTED and, for installments still
    SCHEDULED, PaymentSubmitted. `None` means every waiting item of the batch. Installments are
    locked in id order first, as the callbacks do."""
    attempt_filter = "a.batch_id = :batch_id AND a.state = 'CREATED'"
    params: dict[str, Any] = {"batch_id": batch_id, "now": now}
    if end_to_end_ids is not None:
        if not end_to_end_ids:
            return 0
        attempt_filter += " AND a.end_to_end_id IN :e2e"
        params["e2e"] = end_to_end_ids
    lock = select(installments.c.id).where(
        installments.c.id.in_(
            select(payment_attempts.c.installment_id).where(payment_attempts.c.batch_id == batch_id)
        )
    ).order_by(installments.c.id)
    if not is_sqlite_session(session):
        await session.execute(lock.with_for_update())
    expanding = [bindparam("e2e", expanding=True)] if end_to_end_ids is not None else []
    marked = (
        await session.execute(
            text(
                f"""
                UPDATE payment_attempts SET state = 'SUBMITTED', submitted_at = :now
                WHERE id IN (SELECT a.id FROM payment_attempts a WHERE {attempt_filter})
                RETURNING installment_id
                """
            ).bindparams(*expanding),
            params,
        )
    ).scalars().all()
    if not marked:
        return 0
    # The installments whose current attempt the counterparty now holds, in one statement.
    moved = (
        await session.execute(
            text(
                """
                UPDATE installments SET state = 'SUBMITTED', updated_at = :now
                FROM payment_attempts a
                WHERE a.installment_id = installments.id AND a.attempt_no = installments.attempt_no
                  AND a.batch_id = :batch_id AND a.state = 'SUBMITTED' AND a.submitted_at = :now
                  AND installments.state = 'SCHEDULED'
                RETURNING installments.id, installments.entitlement_id, installments.beneficiary_id,
                          installments.period, installments.amount, installments.scheme, installments.agency,
                          installments.channel, installments.counterparty, installments.commune_code,
                          installments.commune_list_date, a.end_to_end_id
                """
            ),
            {"batch_id": batch_id, "now": now},
        )
    ).mappings().all()
    stamp = json_time(now)
    events = [
        {**facts_json(row), "batch_id": batch_id, "end_to_end_id": row["end_to_end_id"], "submitted_at": stamp}
        for row in moved
    ]
    await add_many(session, outbox, PaymentSubmitted, events)
    return len(marked)


async def record_accepted(
    session: AsyncSession,
    outbox: Outbox,
    claimed: Claimed,
    accepted: list[str],
    rejected: list[tuple[str, str]],
    all_items: list[str],
    now: datetime,
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
    await hold_lease(session, claimed, now)
    ours = set(all_items)
    accepted_ours = [e2e for e2e in accepted if e2e in ours]
    doubtful = [e2e for e2e in in_doubt if e2e in ours]
    doubtful += [e2e for e2e, code in rejected if e2e in ours and code in DUPLICATE_CODES]
    unsent = [e2e for e2e in not_sent if e2e in ours]
    everything = len(accepted_ours) == len(all_items) and not rejected and not doubtful and not unsent
    await mark_submitted(session, outbox, claimed.batch_id, None if everything else accepted_ours, now)
    refusals = [
        Outcome(end_to_end_id=e2e, status="FAILED", amount=None, reason_code=code,
                bank_reference=None, occurred_at=now)
        for e2e, code in rejected
        if e2e in ours and code not in DUPLICATE_CODES
    ]
    applied = await apply_outcomes(session, outbox, claimed.counterparty, refusals, now, policy)
    taken = {"submitted_at": now} if accepted_ours else {}
    if doubtful:
        await _release(session, claimed, now, state=model.BATCH_UNKNOWN, next_attempt_at=now, **taken,
                       last_error=f"{len(doubtful)} items in doubt after the answer; asking their status")
    elif unsent:
        delay = backoff_seconds(claimed.attempts, retry_base, retry_cap)
        await _release(session, claimed, now, state=model.BATCH_RETRY,
                       next_attempt_at=now + timedelta(seconds=delay), **taken,
                       last_error=f"{len(unsent)} items not taken; sending them again")
    else:
        await _release(
            session, claimed, now,
            state=model.BATCH_SUBMITTED,
            submitted_at=now,
            next_attempt_at=now + timedelta(seconds=inquiry_after_seconds),
            last_error=None,
        )
    return applied


async def record_retry(
    session: AsyncSession, claimed: Claimed, error: str, now: datetime, base: float, cap: float
) -> None:
    """Nothing happened at the counterparty: the same batch goes again after a backoff."""
    await hold_lease(session, claimed, now)
    delay = backoff_seconds(claimed.attempts, base, cap)
    await _release(
        session, claimed, now,
        state=model.BATCH_RETRY,
        next_attempt_at=now + timedelta(seconds=delay),
        last_error=error[:300],
    )


async def record_unknown(session: AsyncSession, claimed: Claimed, error: str, now: datetime) -> None:
    """Sent, but no answer: ask for each item's status before anything is resent."""
    await hold_lease(session, claimed, now)
    await _release(
        session, claimed, now,
        state=model.BATCH_UNKNOWN, next_attempt_at=now, last_error=error[:300],
    )


async def record_refused(
    session: AsyncSession,
    outbox: Outbox,
    claimed: Claimed,
    code: str,
    items: list[str],
    now: datetime,
    policy: OutcomePolicy,
) -> Applied:
    """The counterparty refused the whole request: its items fail with the code."""
    await hold_lease(session, claimed, now)
    refusals = [
        Outcome(end_to_end_id=e2e, status="FAILED", amount=None, reason_code=code,
                bank_reference=None, occurred_at=now)
        for e2e in items
    ]
    applied = await apply_outcomes(session, outbox, claimed.counterparty, refusals, now, policy)
    await _release(session, claimed, now, state=model.BATCH_REJECTED, last_error=code[:300],
                   completed_at=now)
    return applied


async def record_not_sent(session: AsyncSession, claimed: Claimed, error: str, now: datetime) -> None:
    """We refuse to send a batch whose items differ from its declared totals; its items stay
    visibly pending for a person to look at."""
    await hold_lease(session, claimed, now)
    await _release(session, claimed, now, state=model.BATCH_REJECTED,
                   last_error=f"{error} (not sent)"[:300])


@dataclass
class InquiryFindings:
    outcomes: list[Outcome]
    pending: list[str]  # the counterparty holds them, no outcome yet
    never_received: list[str]  # UNKNOWN_TO_BANK
    undetermined: list[str]  # the inquiry itself failed


async def record_inquiry(
    session: AsyncSession,
    outbox: Outbox,
    claimed: Claimed,
    findings: InquiryFindings,
    now: datetime,
    policy: OutcomePolicy,
    *,
    retry_base: float,
    retry_cap: float,
    inquiry_after_seconds: float,
) -> str:
    """Apply what the status inquiries found and decide the batch's next step; returns it."""
    await hold_lease(session, claimed, now)
    await apply_outcomes(session, outbox, claimed.counterparty, findings.outcomes, now, policy)
    if findings.pending:
        await mark_submitted(session, outbox, claimed.batch_id, findings.pending, now)
    if findings.undetermined:
        # Still unknown: ask again later; nothing is resent while any item is in doubt.
        state = model.BATCH_UNKNOWN if claimed.previous_state != model.BATCH_SUBMITTED else model.BATCH_SUBMITTED
        delay = backoff_seconds(claimed.inquiries, retry_base, retry_cap)
        await _release(session, claimed, now, state=state,
                       next_attempt_at=now + timedelta(seconds=delay),
                       last_error="status inquiry failed")
        return state
    if findings.never_received:
        # The counterparty never got them: the very same batch goes again (after a backoff, so
        # a counterparty that refuses the resend and still cannot find them is not hammered).
        delay = backoff_seconds(claimed.inquiries, retry_base, retry_cap)
        await _release(session, claimed, now, state=model.BATCH_RETRY,
                       next_attempt_at=now + timedelta(seconds=delay),
                       last_error="items unknown to the counterparty; resending the same batch")
        return model.BATCH_RETRY
    remaining = await open_items(session, claimed.batch_id)
    if remaining:
        delay = min(retry_cap * 4, inquiry_after_seconds * (2 ** min(claimed.inquiries, 6)))
        await _release(session, claimed, now, state=model.BATCH_SUBMITTED,
                       next_attempt_at=now + timedelta(seconds=delay))
        return model.BATCH_SUBMITTED
    await _release(session, claimed, now, state=model.BATCH_COMPLETED, completed_at=now)
    return model.BATCH_COMPLETED


async def record_resend_refused(
    session: AsyncSession,
    outbox: Outbox,
    claimed: Claimed,
    code: str,
    findings: InquiryFindings,
    now: datetime,
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
        outcomes=findings.outcomes + [
            Outcome(end_to_end_id=e2e, status="FAILED", amount=None, reason_code=code,
                    bank_reference=None, occurred_at=now)
            for e2e in failures
        ],
        pending=findings.pending,
        never_received=[e2e for e2e in findings.never_received if e2e not in failures],
        undetermined=findings.undetermined,
    )
    return await record_inquiry(session, outbox, claimed, settled, now, policy, retry_base=retry_base,
                                retry_cap=retry_cap, inquiry_after_seconds=inquiry_after_seconds)


async def complete_if_done(session: AsyncSession, claimed: Claimed, now: datetime) -> bool:
    """A submitted batch whose items all have their outcome needs no inquiry."""
    await hold_lease(session, claimed, now)
    if await open_items(session, claimed.batch_id):
        return False
    await _release(session, claimed, now, state=model.BATCH_COMPLETED, completed_at=now)
    return True
