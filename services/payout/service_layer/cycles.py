"""Cycles: every active entitlement yields exactly one installment per period (the database's
unique key makes sure of it), each installment with a usable payment method gets its first
attempt, and attempts are grouped per counterparty into batches with control totals.

Everything here is set-based SQL: one statement creates a cycle's installments, one its
attempts, one assigns them to batches, whatever the number of beneficiaries. Handlers only
flush; the caller owns the transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.adapters.orm import (
    batches,
    cycles,
    entitlements,
    installments,
    payment_attempts,
    payment_methods,
    payable_installment,
)
from services.payout.adapters.outbox_writer import add_many, json_time
from services.payout.domain import model
from services.payout.domain.periods import next_period, vn_date
from services.payout.service_layer.common import facts, facts_json, is_sqlite_session, upsert
from shared.events.contracts import InstallmentCancelled, InstallmentScheduled
from shared.outbox import Outbox

log = logging.getLogger(__name__)


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


def _usable_sql(pm: str = "pm") -> str:
    """SQL condition: the current method may pay money sent on :pay_date (a Vietnam date); the
    SQL twin of `method_usable`."""
    return (
        f"({pm}.status = 'VERIFIED' AND ({pm}.method <> 'AUTHORISED_ACCOUNT' OR "
        f"(({pm}.representative_valid_from IS NULL OR {pm}.representative_valid_from <= :pay_date) AND "
        f"({pm}.representative_valid_until IS NULL OR {pm}.representative_valid_until >= :pay_date))))"
    )


def _hold_reason_sql(pm: str = "pm") -> str:
    """Why the current method may not pay (where `_usable_sql` is false); the SQL twin of the
    reason `method_usable` gives."""
    return (
        f"CASE WHEN {pm}.beneficiary_id IS NULL THEN '{model.HOLD_NO_METHOD}' "
        f"WHEN {pm}.status = 'PENDING_VERIFICATION' THEN '{model.HOLD_PENDING_VERIFICATION}' "
        f"WHEN {pm}.status = 'FAILED' THEN '{model.HOLD_METHOD_FAILED}' "
        f"WHEN {pm}.status = 'FLAGGED' THEN '{model.HOLD_METHOD_FLAGGED}' "
        f"ELSE '{model.HOLD_AUTHORISATION}' END"
    )


def _counterparty_sql(pm: str = "pm") -> str:
    return f"CASE WHEN {pm}.method = 'CASH_POST_OFFICE' THEN 'VNPOST' ELSE {pm}.bank_bin END"


def _payee_sql(pm: str = "pm", b: str = "b", channel: str = "pm.method") -> tuple[str, str]:
    """The account number and name an attempt on `channel` pays with the method `pm`
    (beneficiary `b`): none and the person's own name at the post office, else the account
    and its holder."""
    return (
        f"CASE WHEN {channel} = 'CASH_POST_OFFICE' THEN NULL ELSE {pm}.account_number END",
        f"CASE WHEN {channel} = 'CASH_POST_OFFICE' THEN COALESCE({b}.full_name, {pm}.account_holder_name, '') "
        f"ELSE COALESCE({pm}.verified_name, {pm}.account_holder_name, {b}.full_name, '') END",
    )


FACT_COLUMNS = (
    "id, entitlement_id, beneficiary_id, period, amount, scheme, agency, channel, counterparty, "
    "commune_code, commune_list_date, state, hold_reason"
)


async def start_cycle(
    session: AsyncSession,
    outbox: Outbox,
    period: str,
    started_by: str,
    now: datetime,
    batch_size: int,
) -> CycleStarted:
    """Open the cycle for `period` (or find it) and create what is missing: installments for
    active entitlements, first attempts, batches. Run twice, or twice at once, it creates
    nothing the first run created."""
    created_rows = (
        await session.execute(
            upsert(session, cycles)
            .values(period=period, state="OPEN", started_at=now, started_by=started_by, batch_runs=0)
            .on_conflict_do_nothing(index_elements=["period"])
            .returning(cycles.c.id)
        )
    ).scalars().all()
    created = bool(created_rows)
    # Lock the cycle: two runs for one period take turns (SQLite serialises writers anyway).
    cycle_query = select(cycles.c.id).where(cycles.c.period == period)
    if not is_sqlite_session(session):
        cycle_query = cycle_query.with_for_update()
    cycle_id = (await session.execute(cycle_query)).scalar_one()

    params = {
        "cycle_id": cycle_id,
        "period": period,
        "pay_date": vn_date(now),  # the batches made now are sent today
        "now": now,
    }
    payable = f"(e.duplicate = 0 AND {_usable_sql()})"
    inserted = (
        await session.execute(
            text(
                f"""
                WITH e AS MATERIALIZED ({_ENTITLEMENTS_DUE})
                INSERT INTO installments (
                    cycle_id, entitlement_id, beneficiary_id, period, amount, scheme, agency,
                    commune_code, commune_list_date, channel, counterparty, method_id, state,
                    hold_reason, attempt_no, created_at, updated_at)
                SELECT :cycle_id, e.entitlement_id, e.beneficiary_id, CAST(:period AS VARCHAR(7)), e.amount, e.scheme,
                       e.agency, e.commune_code, e.commune_list_date,
                       CASE WHEN {payable} THEN pm.method END,
                       CASE WHEN {payable} THEN {_counterparty_sql()} END,
                       CASE WHEN {payable} THEN pm.method_id END,
                       CASE WHEN {payable} THEN 'SCHEDULED' ELSE 'ON_HOLD' END,
                       CASE WHEN {payable} THEN NULL WHEN e.duplicate = 1 THEN '{model.HOLD_DUPLICATE_ENTITLEMENT}'
                            ELSE {_hold_reason_sql()} END,
                       CASE WHEN {payable} THEN 1 ELSE 0 END, :now, :now
                FROM e
                LEFT JOIN payment_methods pm ON pm.beneficiary_id = e.beneficiary_id
                WHERE TRUE
                ON CONFLICT (entitlement_id, period) DO NOTHING
                RETURNING {FACT_COLUMNS}
                """
            ),
            params,
        )
    ).mappings().all()
    scheduled = [row for row in inserted if row["state"] == model.SCHEDULED]
    duplicates = await _record_duplicates(session, cycle_id, inserted, now)
    stamp = json_time(now)
    await add_many(
        session, outbox, InstallmentScheduled,
        [{**facts_json(row), "scheduled_at": stamp} for row in scheduled],
    )
    batch_count = 0
    if scheduled:
        ids = [row["id"] for row in scheduled]
        prefix = await _next_batch_prefix(session, cycle_id)
        assigned = await create_first_attempts(
            session, now, cycle_id=cycle_id, id_range=(min(ids), max(ids)),
            batching=(prefix, batch_size),
        )
        batch_count = await _insert_batches(session, cycle_id, period, assigned, now)
    batch_count += await assign_batches(session, cycle_id, period, batch_size, now)
    return CycleStarted(
        cycle_id=cycle_id,
        period=period,
        created=created,
        new_installments=len(inserted),
        scheduled=len(scheduled),
        on_hold=len(inserted) - len(scheduled),
        batches=batch_count,
        duplicates_held=duplicates,
    )


def _due_sql(alias: str) -> str:
    """SQL condition: the entitlement pays `:period`."""
    return (f"{alias}.start_period <= :period AND ({alias}.end_period IS NULL OR {alias}.end_period >= :period) "
            f"AND ({alias}.stop_period IS NULL OR {alias}.stop_period > :period)")


# The entitlements that pay `:period`, each marked `duplicate` when another entitlement of its
# scheme pays the person that period: an installment of the cycle already made (not cancelled,
# not itself held as a duplicate), or an older entitlement (granted first; the id breaks ties).
# One installment per person, scheme and period; the unique index on installments backs it.
# Joins, not a subquery per row, computed once (MATERIALIZED): the installments being inserted
# are not scanned again, and only people with two entitlements due look for the older one.
_ENTITLEMENTS_DUE = f"""
    SELECT g.*,
           CASE WHEN paying.entitlement_id IS NOT NULL AND paying.entitlement_id <> g.entitlement_id THEN 1
                WHEN shared.beneficiary_id IS NULL THEN 0
                WHEN EXISTS (
                    SELECT 1 FROM entitlements f
                    WHERE f.beneficiary_id = g.beneficiary_id AND f.scheme = g.scheme
                      AND f.entitlement_id <> g.entitlement_id AND {_due_sql("f")}
                      AND (f.granted_at < g.granted_at OR (f.granted_at = g.granted_at AND f.entitlement_id < g.entitlement_id)))
                THEN 1 ELSE 0 END AS duplicate
    FROM entitlements g
    LEFT JOIN (
        SELECT beneficiary_id, scheme, MIN(entitlement_id) AS entitlement_id FROM installments o
        WHERE o.cycle_id = :cycle_id AND o.period = :period AND {payable_installment("o")}
        GROUP BY beneficiary_id, scheme
    ) paying ON paying.beneficiary_id = g.beneficiary_id AND paying.scheme = g.scheme
    LEFT JOIN (
        SELECT beneficiary_id, scheme FROM entitlements s WHERE {_due_sql("s")}
        GROUP BY beneficiary_id, scheme HAVING COUNT(*) > 1
    ) shared ON shared.beneficiary_id = g.beneficiary_id AND shared.scheme = g.scheme
    WHERE {_due_sql("g")}
"""


async def _record_duplicates(
    session: AsyncSession, cycle_id: int, inserted: Sequence[Any], now: datetime
) -> int:
    """One DUPLICATE_ENTITLEMENT anomaly per installment just held as a duplicate, naming the
    entitlement that pays the period instead."""
    held = [row["id"] for row in inserted
            if row["state"] == model.ON_HOLD and row["hold_reason"] == model.HOLD_DUPLICATE_ENTITLEMENT]
    if not held:
        return 0
    await session.execute(
        text(
            f"""
            INSERT INTO payment_anomalies (kind, installment_id, paid_by_entitlement_id, expected_amount, created_at)
            SELECT '{model.ANOMALY_DUPLICATE_ENTITLEMENT}', d.id, p.entitlement_id, d.amount, :now
            FROM installments d
            LEFT JOIN installments p
                   ON p.beneficiary_id = d.beneficiary_id AND p.scheme = d.scheme AND p.period = d.period
                  AND {payable_installment("p")}
            WHERE d.cycle_id = :cycle_id AND d.id BETWEEN :lo AND :hi AND d.state = 'ON_HOLD'
              AND d.hold_reason = '{model.HOLD_DUPLICATE_ENTITLEMENT}'
            """
        ),
        {"cycle_id": cycle_id, "lo": min(held), "hi": max(held), "now": now},
    )
    log.warning("installments held: another entitlement of the scheme pays the person this period",
                extra={"fields": {"cycle_id": cycle_id, "held": len(held)}})
    return len(held)


async def create_first_attempts(
    session: AsyncSession,
    now: datetime,
    *,
    cycle_id: int | None = None,
    id_range: tuple[int, int] | None = None,
    installment_ids: Sequence[int] | None = None,
    batching: tuple[str, int] | None = None,
) -> list[tuple[str, str, int]]:
    """Attempt 1 for SCHEDULED installments (of a cycle within an id range, or the given
    ones) that have none yet, with the account as the payment method has it now. With
    `batching` (batch id prefix, size) each attempt is put in its batch as it is created:
    chunks of `size` per counterparty in id order. Returns (batch id, counterparty, amount)
    of the batched attempts."""
    where = "i.state = 'SCHEDULED' AND i.attempt_no = 1"
    params: dict[str, Any] = {"now": now}
    batch_target = batch_column = returning = ""
    if batching is not None:
        params["prefix"], params["size"] = batching
        batch_target = " batch_id,"
        batch_column = (
            " CAST(:prefix AS VARCHAR(40)) || i.counterparty || '-' ||"
            " ((ROW_NUMBER() OVER (PARTITION BY i.counterparty ORDER BY i.id) - 1) / :size),"
        )
        returning = "RETURNING batch_id, counterparty, amount"
    if cycle_id is not None:
        where += " AND i.cycle_id = :cycle_id"
        params["cycle_id"] = cycle_id
    if id_range is not None:
        where += " AND i.id BETWEEN :lo AND :hi"
        params["lo"], params["hi"] = id_range
    if installment_ids is not None:
        if not installment_ids:
            return 0
        where += " AND i.id IN :ids"
        params["ids"] = list(installment_ids)
    account_number, account_name = _payee_sql(channel="i.channel")
    statement = text(
        f"""
        INSERT INTO payment_attempts (
            installment_id, attempt_no, end_to_end_id, cycle_id, channel, counterparty, amount,{batch_target}
            account_number, account_name, commune_code, remittance_info, state, created_at)
        SELECT i.id, 1, 'PAY-' || i.id || '-1', i.cycle_id, i.channel, i.counterparty, i.amount,{batch_column}
               {account_number},
               {account_name},
               COALESCE(b.commune_code, i.commune_code),
               i.agency || ' ' || i.scheme || ' ' || i.period,
               'CREATED', :now
        FROM installments i
        JOIN payment_methods pm ON pm.beneficiary_id = i.beneficiary_id
        LEFT JOIN beneficiaries b ON b.beneficiary_id = i.beneficiary_id
        WHERE {where}
        ON CONFLICT (installment_id, attempt_no) DO NOTHING
        {returning}
        """
    )
    if installment_ids is not None:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    result = await session.execute(statement, params)
    return [tuple(row) for row in result.all()] if batching is not None else []  # type: ignore[misc]


async def assign_batches(
    session: AsyncSession, cycle_id: int, period: str, batch_size: int, now: datetime
) -> int:
    """Group a cycle's attempts that wait without a batch into batches of at most
    `batch_size` per counterparty, each declaring its count and sum."""
    prefix = await _next_batch_prefix(session, cycle_id)
    assigned = (
        await session.execute(
            text(
                """
                UPDATE payment_attempts SET batch_id = n.bid
                FROM (
                    SELECT id, :prefix || counterparty || '-' ||
                           ((ROW_NUMBER() OVER (PARTITION BY counterparty ORDER BY id) - 1) / :size) AS bid
                    FROM payment_attempts
                    WHERE cycle_id = :cycle_id AND state = 'CREATED' AND batch_id IS NULL
                ) AS n
                WHERE payment_attempts.id = n.id AND payment_attempts.batch_id IS NULL
                  AND payment_attempts.state = 'CREATED'
                RETURNING payment_attempts.batch_id, payment_attempts.counterparty, payment_attempts.amount
                """
            ),
            {"prefix": prefix, "size": batch_size, "cycle_id": cycle_id},
        )
    ).all()
    return await _insert_batches(session, cycle_id, period, [tuple(row) for row in assigned], now)


async def _next_batch_prefix(session: AsyncSession, cycle_id: int) -> str:
    """Batch ids are `B<cycle>-<run>-<counterparty>-<chunk>`: unique, and at most 35
    characters (ISO 20022's limit)."""
    run = (
        await session.execute(
            update(cycles)
            .where(cycles.c.id == cycle_id)
            .values(batch_runs=cycles.c.batch_runs + 1)
            .returning(cycles.c.batch_runs)
        )
    ).scalar_one()
    return f"B{cycle_id}-{run}-"


async def _insert_batches(
    session: AsyncSession, cycle_id: int, period: str, assigned: Sequence[tuple[Any, ...]], now: datetime
) -> int:
    """One batch row per batch id, declaring the count and sum of the attempts put in it."""
    if not assigned:
        return 0
    totals: dict[str, list[Any]] = {}
    for batch_id, counterparty, amount in assigned:
        entry = totals.setdefault(batch_id, [counterparty, 0, 0])
        entry[1] += 1
        entry[2] += int(amount)
    execution_date: date = vn_date(now)
    await session.execute(
        batches.insert(),
        [
            {
                "batch_id": batch_id,
                "cycle_id": cycle_id,
                "period": period,
                "counterparty": counterparty,
                "control_count": count,
                "control_sum": total,
                "execution_date": execution_date,
                "state": model.BATCH_READY,
                "attempts": 0,
                "inquiries": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for batch_id, (counterparty, count, total) in sorted(totals.items())
        ],
    )
    return len(totals)


async def assign_pending_batches(session: AsyncSession, batch_size: int, now: datetime) -> int:
    """Batches for attempts created after their cycle started (released holds, cash
    fallbacks)."""
    waiting = (
        await session.execute(
            select(payment_attempts.c.cycle_id, cycles.c.period)
            .join(cycles, cycles.c.id == payment_attempts.c.cycle_id)
            .where(payment_attempts.c.state == model.CREATED, payment_attempts.c.batch_id.is_(None))
            .distinct()
        )
    ).all()
    made = 0
    for cycle_id, period in waiting:
        made += await assign_batches(session, cycle_id, period, batch_size, now)
    return made


def method_usable(method: dict[str, Any] | None, pay_date: date) -> tuple[bool, str | None]:
    """Whether the current method may pay money sent on `pay_date` (a Vietnam date), else why
    the installment waits. A representative pays only while the authorisation is valid on
    that day; `_usable_sql` and `_hold_reason_sql` are its SQL twin."""
    if method is None:
        return False, model.HOLD_NO_METHOD
    status = method["status"]
    if status != model.METHOD_VERIFIED:
        return False, {
            model.METHOD_PENDING: model.HOLD_PENDING_VERIFICATION,
            model.METHOD_FAILED: model.HOLD_METHOD_FAILED,
            model.METHOD_FLAGGED: model.HOLD_METHOD_FLAGGED,
        }.get(status, model.HOLD_PENDING_VERIFICATION)
    if method["method"] == model.AUTHORISED_ACCOUNT:
        valid_from, valid_until = method["representative_valid_from"], method["representative_valid_until"]
        if (valid_from is not None and valid_from > pay_date) or (
            valid_until is not None and valid_until < pay_date
        ):
            return False, model.HOLD_AUTHORISATION
    return True, None


async def release_holds(
    session: AsyncSession, outbox: Outbox, beneficiary_ids: Sequence[str], now: datetime
) -> int:
    """Installments waiting for a method are scheduled once their beneficiary has a usable one
    (their batches are made by the submission worker); the others get their current reason."""
    if not beneficiary_ids:
        return 0
    held = (
        await session.execute(
            select(installments)
            .where(
                installments.c.beneficiary_id.in_(list(beneficiary_ids)),
                installments.c.state == model.ON_HOLD,
                installments.c.hold_reason.is_distinct_from(model.HOLD_DUPLICATE_ENTITLEMENT),
            )
            .order_by(installments.c.id)
        )
    ).mappings().all()
    if not held:
        return 0
    methods = {
        row["beneficiary_id"]: dict(row)
        for row in (
            await session.execute(
                select(payment_methods).where(
                    payment_methods.c.beneficiary_id.in_({row["beneficiary_id"] for row in held})
                )
            )
        ).mappings()
    }
    released: list[dict[str, Any]] = []
    pay_date = vn_date(now)  # released installments are batched and sent now
    for row in held:
        method = methods.get(row["beneficiary_id"])
        usable, reason = method_usable(method, pay_date)
        if not usable:
            if reason != row["hold_reason"]:
                await session.execute(
                    update(installments)
                    .where(installments.c.id == row["id"], installments.c.state == model.ON_HOLD)
                    .values(hold_reason=reason, updated_at=now)
                )
            continue
        assert method is not None
        counterparty = model.VNPOST if method["method"] == model.CASH_POST_OFFICE else method["bank_bin"]
        await session.execute(
            update(installments)
            .where(installments.c.id == row["id"], installments.c.state == model.ON_HOLD)
            .values(
                state=model.SCHEDULED,
                hold_reason=None,
                attempt_no=1,
                channel=method["method"],
                counterparty=counterparty,
                method_id=method["method_id"],
                updated_at=now,
            )
        )
        released.append({**row, "channel": method["method"], "counterparty": counterparty})
    if released:
        await create_first_attempts(session, now, installment_ids=[row["id"] for row in released])
        await outbox.add(
            session, [InstallmentScheduled(**facts(row), scheduled_at=now) for row in released]
        )
    return len(released)


async def stop_entitlements(
    session: AsyncSession,
    outbox: Outbox,
    *,
    from_period: str,
    reason: str,
    now: datetime,
    entitlement_ids: Sequence[str] | None = None,
    beneficiary_id: str | None = None,
) -> int:
    """No installment from `from_period` on; those already made but not yet sent are
    cancelled. Returns how many were cancelled."""
    condition = (
        entitlements.c.entitlement_id.in_(list(entitlement_ids))
        if entitlement_ids is not None
        else entitlements.c.beneficiary_id == beneficiary_id
    )
    stopped = (
        await session.execute(
            update(entitlements)
            .where(condition)
            .where((entitlements.c.stop_period.is_(None)) | (entitlements.c.stop_period > from_period))
            .values(stop_period=from_period, stop_reason=reason, updated_at=now)
            .returning(entitlements.c.entitlement_id)
        )
    ).scalars().all()
    ids = list(entitlement_ids) if entitlement_ids is not None else list(stopped)
    if beneficiary_id is not None:
        ids = list(
            (
                await session.execute(
                    select(entitlements.c.entitlement_id).where(
                        entitlements.c.beneficiary_id == beneficiary_id
                    )
                )
            ).scalars()
        )
    return await cancel_unsent(session, outbox, ids, from_period, reason, now)


async def cancel_unsent(
    session: AsyncSession,
    outbox: Outbox,
    entitlement_ids: Sequence[str],
    from_period: str,
    reason: str,
    now: datetime,
) -> int:
    """Cancel installments of these entitlements from `from_period` on that no bank has seen:
    on hold, or scheduled in a batch never sent. A batch that lost items gets new totals."""
    if not entitlement_ids:
        return 0
    query = (
        select(
            installments,
            payment_attempts.c.id.label("attempt_id"),
            payment_attempts.c.batch_id.label("batch_id"),
        )
        .select_from(
            installments.outerjoin(
                payment_attempts,
                (payment_attempts.c.installment_id == installments.c.id)
                & (payment_attempts.c.attempt_no == installments.c.attempt_no),
            )
        )
        .where(
            installments.c.entitlement_id.in_(list(entitlement_ids)),
            installments.c.period >= from_period,
            installments.c.state.in_([model.ON_HOLD, model.SCHEDULED]),
        )
        .order_by(installments.c.id)
    )
    if not is_sqlite_session(session):
        query = query.with_for_update(of=installments)
    rows = (await session.execute(query)).mappings().all()
    if not rows:
        return 0
    batch_ids = sorted({row["batch_id"] for row in rows if row["batch_id"]})
    open_batches: set[str] = set()
    if batch_ids:
        batch_query = (
            select(batches.c.batch_id)
            .where(
                batches.c.batch_id.in_(batch_ids),
                batches.c.state == model.BATCH_READY,
                batches.c.attempts == 0,
            )
            .order_by(batches.c.batch_id)
        )
        if not is_sqlite_session(session):
            batch_query = batch_query.with_for_update()
        open_batches = set((await session.execute(batch_query)).scalars())
    cancellable = [
        row
        for row in rows
        if row["state"] == model.ON_HOLD or row["batch_id"] is None or row["batch_id"] in open_batches
    ]
    if not cancellable:
        return 0
    ids = [row["id"] for row in cancellable]
    await session.execute(
        update(installments)
        .where(installments.c.id.in_(ids))
        .values(state=model.CANCELLED, reason_code=reason, reason_text=None, updated_at=now)
    )
    attempt_ids = [row["attempt_id"] for row in cancellable if row["attempt_id"] is not None]
    if attempt_ids:
        await session.execute(
            update(payment_attempts)
            .where(payment_attempts.c.id.in_(attempt_ids))
            .values(state=model.CANCELLED, finished_at=now)
        )
    touched = sorted({row["batch_id"] for row in cancellable if row["batch_id"]})
    for batch_id in touched:
        live = (
            await session.execute(
                text(
                    "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payment_attempts "
                    "WHERE batch_id = :b AND state <> 'CANCELLED'"
                ),
                {"b": batch_id},
            )
        ).one()
        await session.execute(
            update(batches)
            .where(batches.c.batch_id == batch_id)
            .values(
                control_count=int(live[0]),
                control_sum=int(live[1]),
                state=model.BATCH_READY if live[0] else model.BATCH_CANCELLED,
                updated_at=now,
            )
        )
    announced = [row for row in cancellable if row["state"] == model.SCHEDULED]
    if announced:
        await outbox.add(
            session,
            [InstallmentCancelled(**facts(row), reason=reason, cancelled_at=now) for row in announced],
        )
    return len(cancellable)


def stop_period_after(period: str) -> str:
    return next_period(period)
