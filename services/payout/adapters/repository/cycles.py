"""Statements of the payment cycle: a cycle's installments, their first attempts and batches,
released holds and cancellations. Set-based: one statement creates a chunk of a cycle's
installments, one their attempts in their batches, whatever the number of beneficiaries. Every
function executes on the caller's unit of work and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import ColumnElement, bindparam, literal_column, or_, select, table, text, update
from sqlalchemy.sql.expression import ColumnClause, column

from services.payout.adapters.orm import (
    batches,
    cycles,
    entitlements,
    installments,
    payable_installment,
    payment_attempts,
    payment_methods,
)
from services.payout.domain import methods, model
from services.payout.domain.identity import IDENTITY_HOLD_REASONS
from shared.uow import UnitOfWork

# -- the method rules as SQL text, for the statements written in SQL ----------------------------

_METHOD_COLUMNS = (
    "beneficiary_id",
    "method",
    "status",
    "bank_bin",
    "representative_valid_from",
    "representative_valid_until",
)
_PAY_DATE: ColumnClause[Any] = literal_column(
    ":pay_date"
)  # a bound parameter of the statement the text goes into


def _sql(expression: ColumnElement[Any]) -> str:
    return str(expression.compile(compile_kwargs={"literal_binds": True}))


def _methods_alias(alias: str) -> Any:
    return table(alias, *(column(name) for name in _METHOD_COLUMNS))


@lru_cache
def usable_sql(pm: str = "pm") -> str:
    """`domain.methods.usable` for the method aliased `pm`, on the day bound as `:pay_date`."""
    return f"({_sql(methods.usable(_methods_alias(pm), _PAY_DATE))})"


@lru_cache
def hold_reason_sql(pm: str = "pm") -> str:
    """`domain.methods.hold_reason` for the method aliased `pm`."""
    return _sql(methods.hold_reason(_methods_alias(pm)))


@lru_cache
def counterparty_sql(pm: str = "pm") -> str:
    """`domain.methods.counterparty` for the method aliased `pm`."""
    return _sql(methods.counterparty(_methods_alias(pm)))


def payee_sql(pm: str = "pm", b: str = "b", channel: str = "pm.method") -> tuple[str, str]:
    """The account number and name an attempt on `channel` pays with the method `pm`
    (beneficiary `b`): none and the person's own name at the post office, else the account
    and its holder."""
    return (
        f"CASE WHEN {channel} = 'CASH_POST_OFFICE' THEN NULL ELSE {pm}.account_number END",
        f"CASE WHEN {channel} = 'CASH_POST_OFFICE' THEN COALESCE({b}.full_name, {pm}.account_holder_name, '') "
        f"ELSE COALESCE({pm}.verified_name, {pm}.account_holder_name, {b}.full_name, '') END",
    )


Row = Mapping[str, Any]  # a row by column name (SQLAlchemy's RowMapping)


def _rows(result: Any) -> Sequence[Row]:
    return cast(Sequence[Row], result.mappings().all())


FACT_COLUMNS = (
    "id, entitlement_id, beneficiary_id, period, amount, scheme, agency, channel, counterparty, "
    "commune_code, commune_list_date, state, hold_reason"
)

# -- the cycle ----------------------------------------------------------------------------------


async def open_cycle(
    uow: UnitOfWork, period: str, started_by: str, pay_date: date | None = None
) -> bool:
    """Create the cycle of `period` unless it exists; whether this call created it."""
    created = await uow.execute(
        uow.insert(cycles)
        .values(
            period=period,
            state="OPEN",
            started_at=uow.now,
            started_by=started_by,
            prepared_by=started_by,
            pay_date=pay_date,
            batch_runs=0,
        )
        .on_conflict_do_nothing(index_elements=["period"])
        .returning(cycles.c.id)
    )
    return bool(created.scalars().all())


async def lock_cycle(uow: UnitOfWork, period: str) -> int:
    """The cycle's id, its row locked: two runs for one period take turns (SQLite serialises
    writers anyway). FOR NO KEY UPDATE: a worker writing a batch of the cycle meanwhile checks
    its foreign key with a key-share lock, which this must not block (it would deadlock with a
    chunk waiting for that worker's installments)."""
    query = uow.for_update(select(cycles.c.id).where(cycles.c.period == period), key_share=True)
    return int((await uow.execute(query)).scalar_one())


async def next_batch_run(uow: UnitOfWork, cycle_id: int) -> int:
    """Count one more batching run of the cycle; its number."""
    run = await uow.execute(
        update(cycles)
        .where(cycles.c.id == cycle_id)
        .values(batch_runs=cycles.c.batch_runs + 1)
        .returning(cycles.c.batch_runs)
    )
    return int(run.scalar_one())


def _due_sql(alias: str) -> str:
    """SQL condition: the entitlement pays `:period`."""
    return (
        f"{alias}.start_period <= :period AND ({alias}.end_period IS NULL OR {alias}.end_period >= :period) "
        f"AND ({alias}.stop_period IS NULL OR {alias}.stop_period > :period)"
    )


# The entitlements of a chunk (ids after `:after`, through `:through`) that pay `:period`, each
# marked `duplicate` when another entitlement of its scheme pays the person that period: an
# installment of the cycle already made (not cancelled, not itself held as a duplicate), or an
# older entitlement (granted first; the id breaks ties). One installment per person, scheme and
# period; the unique index on installments backs it, and both lookups are probes of an index
# per entitlement, so a chunk costs the same however much of the cycle exists already.
def _entitlements_due(bounded: bool) -> str:
    through = " AND g.entitlement_id <= :through" if bounded else ""
    return f"""
    SELECT g.*,
           CASE WHEN EXISTS (
                    SELECT 1 FROM installments o
                    WHERE o.beneficiary_id = g.beneficiary_id AND o.scheme = g.scheme
                      AND o.period = :period AND {payable_installment("o")}
                      AND o.entitlement_id <> g.entitlement_id)
                THEN 1
                WHEN EXISTS (
                    SELECT 1 FROM entitlements f
                    WHERE f.beneficiary_id = g.beneficiary_id AND f.scheme = g.scheme
                      AND f.entitlement_id <> g.entitlement_id AND {_due_sql("f")}
                      AND (f.granted_at < g.granted_at OR (f.granted_at = g.granted_at AND f.entitlement_id < g.entitlement_id)))
                THEN 1 ELSE 0 END AS duplicate
    FROM entitlements g
    WHERE {_due_sql("g")} AND g.entitlement_id > :after{through}
"""


_PAYABLE = f"(e.duplicate = 0 AND {usable_sql()})"


@lru_cache
def _insert_installments(bounded: bool) -> Any:
    return text(
        f"""
    WITH e AS MATERIALIZED ({_entitlements_due(bounded)})
    INSERT INTO installments (
        cycle_id, entitlement_id, beneficiary_id, period, amount, scheme, agency,
        commune_code, commune_list_date, channel, counterparty, method_id, state,
        hold_reason, attempt_no, created_at, updated_at)
    SELECT :cycle_id, e.entitlement_id, e.beneficiary_id, CAST(:period AS VARCHAR(7)), e.amount, e.scheme,
           e.agency, e.commune_code, e.commune_list_date,
           CASE WHEN {_PAYABLE} THEN pm.method END,
           CASE WHEN {_PAYABLE} THEN {counterparty_sql()} END,
           CASE WHEN {_PAYABLE} THEN pm.method_id END,
           CASE WHEN {_PAYABLE} THEN 'SCHEDULED' ELSE 'ON_HOLD' END,
           CASE WHEN {_PAYABLE} THEN NULL WHEN e.duplicate = 1 THEN '{model.HOLD_DUPLICATE_ENTITLEMENT}'
                ELSE {hold_reason_sql()} END,
           CASE WHEN {_PAYABLE} THEN 1 ELSE 0 END, :now, :now
    FROM e
    LEFT JOIN payment_methods pm ON pm.beneficiary_id = e.beneficiary_id
    WHERE TRUE
    ON CONFLICT (entitlement_id, period) DO NOTHING
    RETURNING {FACT_COLUMNS}
    """
    )


async def chunk_end(uow: UnitOfWork, period: str, after: str, size: int) -> str | None:
    """The id of the `size`-th entitlement due in `period` after `after` (in id order): where
    a chunk of `size` ends; None when fewer are left (the chunk runs to the end)."""
    end = await uow.execute(
        text(
            f"SELECT g.entitlement_id FROM entitlements g"
            f" WHERE {_due_sql('g')} AND g.entitlement_id > :after"
            f" ORDER BY g.entitlement_id LIMIT 1 OFFSET :skip"
        ),
        {"period": period, "after": after, "skip": size - 1},
    )
    found: str | None = end.scalar_one_or_none()
    return found


async def insert_installments(
    uow: UnitOfWork,
    cycle_id: int,
    period: str,
    pay_date: date,
    entitlements_after: str,
    through: str | None,
) -> Sequence[Row]:
    """The installments the cycle misses, one per entitlement due with an id after
    `entitlements_after` and up to `through` (None: to the last): scheduled with the current
    method where it pays on `pay_date`, else on hold with the reason. Returns their facts."""
    params: dict[str, Any] = {
        "cycle_id": cycle_id,
        "period": period,
        "pay_date": pay_date,
        "now": uow.now,
        "after": entitlements_after,
    }
    if through is not None:
        params["through"] = through
    return _rows(await uow.execute(_insert_installments(through is not None), params))


async def finish_creation(uow: UnitOfWork, cycle_id: int) -> None:
    """Every entitlement due has been through the cycle's creation."""
    await uow.execute(
        update(cycles).where(cycles.c.id == cycle_id).values(creation_finished_at=uow.now)
    )


async def record_duplicate_anomalies(
    uow: UnitOfWork, cycle_id: int, id_range: tuple[int, int]
) -> None:
    """One DUPLICATE_ENTITLEMENT anomaly per installment of the range held as a duplicate,
    naming the entitlement that pays the period instead."""
    await uow.execute(
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
        {"cycle_id": cycle_id, "lo": id_range[0], "hi": id_range[1], "now": uow.now},
    )


# -- attempts and batches -----------------------------------------------------------------------

Batched = tuple[str, str, int]  # (batch id, counterparty, amount) of an attempt put in a batch


async def insert_first_attempts(
    uow: UnitOfWork,
    *,
    cycle_id: int | None = None,
    id_range: tuple[int, int] | None = None,
    installment_ids: Sequence[int] | None = None,
    batching: tuple[str, int] | None = None,
) -> list[Batched]:
    """Attempt 1 for SCHEDULED installments (of a cycle within an id range, or the given
    ones) that have none yet, with the account as the payment method has it now. With
    `batching` (batch id prefix, size) each attempt is put in its batch as it is created:
    chunks of `size` per counterparty in id order. Returns the batched attempts."""
    where = "i.state = 'SCHEDULED' AND i.attempt_no = 1"
    params: dict[str, Any] = {"now": uow.now}
    batch_target = batch_column = returning = ""
    if batching is not None:
        params["prefix"], params["size"] = batching
        batch_target = " batch_id,"
        batch_column = (
            " CAST(:prefix AS VARCHAR(40)) || i.agency || '-' || i.counterparty || '-' ||"
            " ((ROW_NUMBER() OVER (PARTITION BY i.agency, i.counterparty ORDER BY i.id) - 1)"
            " / :size),"
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
            return []
        where += " AND i.id IN :ids"
        params["ids"] = list(installment_ids)
    account_number, account_name = payee_sql(channel="i.channel")
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
    result = await uow.execute(statement, params)
    return [(row[0], row[1], row[2]) for row in result.all()] if batching is not None else []


async def batch_waiting_attempts(
    uow: UnitOfWork, cycle_id: int, prefix: str, size: int
) -> list[Batched]:
    """Put the cycle's attempts that wait without a batch into chunks of `size` per agency and
    counterparty (batch ids `<prefix><agency>-<counterparty>-<chunk>`); returns them."""
    assigned = await uow.execute(
        text(
            """
            UPDATE payment_attempts SET batch_id = n.bid
            FROM (
                SELECT a.id, :prefix || i.agency || '-' || a.counterparty || '-' ||
                       ((ROW_NUMBER() OVER (PARTITION BY i.agency, a.counterparty ORDER BY a.id) - 1)
                        / :size) AS bid
                FROM payment_attempts a JOIN installments i ON i.id = a.installment_id
                WHERE a.cycle_id = :cycle_id AND a.state = 'CREATED' AND a.batch_id IS NULL
            ) AS n
            WHERE payment_attempts.id = n.id AND payment_attempts.batch_id IS NULL
              AND payment_attempts.state = 'CREATED'
            RETURNING payment_attempts.batch_id, payment_attempts.counterparty, payment_attempts.amount
            """
        ),
        {"prefix": prefix, "size": size, "cycle_id": cycle_id},
    )
    return [(row[0], row[1], row[2]) for row in assigned.all()]


async def insert_batches(
    uow: UnitOfWork,
    cycle_id: int,
    period: str,
    totals: dict[str, tuple[str, str, int, int]],
    execution_date: date,
    prepared_by: str,
) -> None:
    """One PREPARED batch per id in `totals` (batch id -> agency, counterparty, control count,
    control sum): it awaits its approval, and submission never claims it before."""
    now = uow.now
    await uow.execute(
        batches.insert(),
        [
            {
                "batch_id": batch_id,
                "cycle_id": cycle_id,
                "period": period,
                "agency": agency,
                "counterparty": counterparty,
                "control_count": count,
                "control_sum": total,
                "execution_date": execution_date,
                "state": model.BATCH_PREPARED,
                "prepared_by": prepared_by,
                "attempts": 0,
                "inquiries": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for batch_id, (agency, counterparty, count, total) in sorted(totals.items())
        ],
    )


async def cycle_pay_date(uow: UnitOfWork, cycle_id: int) -> date | None:
    """The pay date the calendar gave the cycle, if any."""
    found: date | None = (
        await uow.execute(select(cycles.c.pay_date).where(cycles.c.id == cycle_id))
    ).scalar_one_or_none()
    return found


async def set_preparer(uow: UnitOfWork, cycle_id: int, prepared_by: str) -> None:
    """Who prepares the cycle now: the cycle and every batch of it still awaiting approval."""
    await uow.execute(update(cycles).where(cycles.c.id == cycle_id).values(prepared_by=prepared_by))
    await uow.execute(
        update(batches)
        .where(batches.c.cycle_id == cycle_id, batches.c.state == model.BATCH_PREPARED)
        .values(prepared_by=prepared_by, updated_at=uow.now)
    )


async def set_cycle_pay_date(uow: UnitOfWork, cycle_id: int, pay_date: date | None) -> None:
    await uow.execute(update(cycles).where(cycles.c.id == cycle_id).values(pay_date=pay_date))


async def cycles_with_unbatched_attempts(uow: UnitOfWork) -> list[tuple[int, str]]:
    """(cycle id, period) of the cycles with attempts waiting for a batch."""
    waiting = await uow.execute(
        select(payment_attempts.c.cycle_id, cycles.c.period)
        .join(cycles, cycles.c.id == payment_attempts.c.cycle_id)
        .where(payment_attempts.c.state == model.CREATED, payment_attempts.c.batch_id.is_(None))
        .distinct()
    )
    return [(int(cycle_id), period) for cycle_id, period in waiting.all()]


# -- holds --------------------------------------------------------------------------------------


async def held_for_a_method(uow: UnitOfWork, beneficiary_ids: Sequence[str]) -> Sequence[Row]:
    """These people's installments on hold for a reason a method can lift (not duplicates)."""
    held = await uow.execute(
        select(installments)
        .where(
            installments.c.beneficiary_id.in_(list(beneficiary_ids)),
            installments.c.state == model.ON_HOLD,
            installments.c.hold_reason.is_distinct_from(model.HOLD_DUPLICATE_ENTITLEMENT),
            # an identity hold waits for the agency (a stop), never for a method
            or_(
                installments.c.hold_reason.is_(None),
                installments.c.hold_reason.not_in(IDENTITY_HOLD_REASONS),
            ),
        )
        .order_by(installments.c.id)
    )
    return _rows(held)


async def current_methods(uow: UnitOfWork, beneficiary_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The current payment method of each of these people that has one."""
    rows = await uow.execute(
        select(payment_methods).where(payment_methods.c.beneficiary_id.in_(beneficiary_ids))
    )
    return {row["beneficiary_id"]: dict(row) for row in rows.mappings()}


async def set_hold_reason(uow: UnitOfWork, installment_id: int, reason: str | None) -> None:
    await uow.execute(
        update(installments)
        .where(installments.c.id == installment_id, installments.c.state == model.ON_HOLD)
        .values(hold_reason=reason, updated_at=uow.now)
    )


async def schedule_held(
    uow: UnitOfWork, installment_id: int, method: dict[str, Any], counterparty: str
) -> None:
    """A held installment scheduled for its first attempt with `method`."""
    await uow.execute(
        update(installments)
        .where(installments.c.id == installment_id, installments.c.state == model.ON_HOLD)
        .values(
            state=model.SCHEDULED,
            hold_reason=None,
            attempt_no=1,
            channel=method["method"],
            counterparty=counterparty,
            method_id=method["method_id"],
            updated_at=uow.now,
        )
    )


# -- stops and cancellations --------------------------------------------------------------------


async def stop_entitlements(
    uow: UnitOfWork,
    from_period: str,
    reason: str,
    *,
    entitlement_ids: Sequence[str] | None = None,
    beneficiary_id: str | None = None,
) -> list[str]:
    """Stop these entitlements (or the person's) from `from_period` on, unless they stop
    earlier already; the ids of those this changed."""
    condition = (
        entitlements.c.entitlement_id.in_(list(entitlement_ids))
        if entitlement_ids is not None
        else entitlements.c.beneficiary_id == beneficiary_id
    )
    stopped = await uow.execute(
        update(entitlements)
        .where(condition)
        .where((entitlements.c.stop_period.is_(None)) | (entitlements.c.stop_period > from_period))
        .values(stop_period=from_period, stop_reason=reason, updated_at=uow.now)
        .returning(entitlements.c.entitlement_id)
    )
    return list(stopped.scalars().all())


async def entitlement_ids_of(uow: UnitOfWork, beneficiary_id: str) -> list[str]:
    rows = await uow.execute(
        select(entitlements.c.entitlement_id).where(entitlements.c.beneficiary_id == beneficiary_id)
    )
    return list(rows.scalars())


async def unsent_installments(
    uow: UnitOfWork, entitlement_ids: Sequence[str], from_period: str
) -> Sequence[Row]:
    """These entitlements' installments from `from_period` on that are on hold or scheduled,
    with their current attempt's id and batch, locked."""
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
    return _rows(await uow.execute(uow.for_update(query, of=installments)))


async def never_sent_batches(uow: UnitOfWork, batch_ids: Sequence[str]) -> set[str]:
    """Those of these batches no counterparty has seen (awaiting approval, or ready and never
    sent), locked."""
    query = (
        select(batches.c.batch_id)
        .where(
            batches.c.batch_id.in_(batch_ids),
            batches.c.state.in_([model.BATCH_PREPARED, model.BATCH_READY]),
            batches.c.attempts == 0,
        )
        .order_by(batches.c.batch_id)
    )
    return set((await uow.execute(uow.for_update(query))).scalars())


async def cancel_installments(uow: UnitOfWork, installment_ids: Sequence[int], reason: str) -> None:
    await uow.execute(
        update(installments)
        .where(installments.c.id.in_(installment_ids))
        .values(state=model.CANCELLED, reason_code=reason, reason_text=None, updated_at=uow.now)
    )


async def cancel_attempts(uow: UnitOfWork, attempt_ids: Sequence[int]) -> None:
    await uow.execute(
        update(payment_attempts)
        .where(payment_attempts.c.id.in_(attempt_ids))
        .values(state=model.CANCELLED, finished_at=uow.now)
    )


async def batch_totals(uow: UnitOfWork, batch_id: str) -> tuple[int, int]:
    """The count and sum of the items a batch still carries."""
    count, total = (
        await uow.execute(
            text(
                "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payment_attempts "
                "WHERE batch_id = :b AND state <> 'CANCELLED'"
            ),
            {"b": batch_id},
        )
    ).one()
    return int(count), int(total)


async def recount_batch(uow: UnitOfWork, batch_id: str) -> None:
    """New control totals for a batch that lost items (it keeps its state: awaiting approval,
    or approved and not yet sent); cancelled when none is left."""
    count, total = await batch_totals(uow, batch_id)
    values: dict[str, Any] = {"control_count": count, "control_sum": total, "updated_at": uow.now}
    if not count:
        values["state"] = model.BATCH_CANCELLED
    await uow.execute(update(batches).where(batches.c.batch_id == batch_id).values(**values))
