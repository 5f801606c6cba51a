"""The money path's statements: batches under their lease, the attempts and installments they
carry to a counterparty, and what outcomes write (callback event ids, state changes, cash
attempts, flagged methods, anomalies). Installments are always locked in id order, as every
writer of them does, so two transactions queue instead of deadlocking."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, insert, or_, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import BindParameter

from services.payout.adapters.orm import (
    batches,
    beneficiaries,
    callback_events,
    installments,
    payment_anomalies,
    payment_attempts,
    payment_methods,
)
from services.payout.adapters.repository.cycles import (
    counterparty_sql,
    hold_reason_sql,
    payee_sql,
    usable_sql,
)
from services.payout.domain import model
from services.payout.domain.outcomes import ATTEMPT_CHANGES, INSTALLMENT_CHANGES
from shared.bulk import update_by_key
from shared.uow import UnitOfWork

SEND_STATES = (model.BATCH_READY, model.BATCH_RETRY)
LEASED_STATES = (model.BATCH_SENDING, model.BATCH_INQUIRING)

# -- batches under a lease ----------------------------------------------------------------------


async def due_batch(uow: UnitOfWork, *, sweep: bool) -> RowMapping | None:
    """The next batch to send or inquire (`sweep`: a submitted one whose inquiry is due), locked
    and skipped by the other claimers. A lease that ran out is due too."""
    now = uow.now
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
    query = (
        select(batches).where(due).order_by(batches.c.next_attempt_at, batches.c.batch_id).limit(1)
    )
    row: RowMapping | None = (
        (await uow.execute(uow.for_update(query, skip_locked=True))).mappings().first()
    )
    return row


async def lease_batch(
    uow: UnitOfWork, row: RowMapping, *, send: bool, lease_seconds: float
) -> bool:
    """Compare-and-set the batch `row` to its leased state with the next lease token; False if
    another claimer moved it first."""
    now = uow.now
    values: dict[str, Any] = {
        "lease_until": now + timedelta(seconds=lease_seconds),
        "lease_token": batches.c.lease_token + 1,
        "updated_at": now,
    }
    if send:
        values.update(state=model.BATCH_SENDING, attempts=batches.c.attempts + 1)
    else:
        values.update(state=model.BATCH_INQUIRING, inquiries=batches.c.inquiries + 1)
    taken = await uow.execute(
        update(batches)
        .where(batches.c.batch_id == row["batch_id"], batches.c.state == row["state"])
        .where(batches.c.attempts == row["attempts"], batches.c.inquiries == row["inquiries"])
        .values(**values)
    )
    return bool(taken.rowcount == 1)


def _held(batch_id: str, lease_token: int) -> ColumnElement[bool]:
    """The batch still under this claim: leased, with the claim's token."""
    return and_(
        batches.c.batch_id == batch_id,
        batches.c.lease_token == lease_token,
        batches.c.state.in_(LEASED_STATES),
    )


async def update_held_batch(
    uow: UnitOfWork, batch_id: str, lease_token: int, **values: Any
) -> bool:
    """Write `values` to the batch if it is still under the claim (which locks its row); False
    if the lease was lost."""
    changed = await uow.execute(
        update(batches).where(_held(batch_id, lease_token)).values(**values)
    )
    return bool(changed.rowcount == 1)


async def update_batch(uow: UnitOfWork, batch_id: str, **values: Any) -> None:
    await uow.execute(update(batches).where(batches.c.batch_id == batch_id).values(**values))


async def lease_token(uow: UnitOfWork, batch_id: str) -> int | None:
    token: int | None = (
        await uow.execute(select(batches.c.lease_token).where(batches.c.batch_id == batch_id))
    ).scalar_one_or_none()
    return token


async def batch_items(uow: UnitOfWork, batch_id: str) -> list[dict[str, Any]]:
    """Every item the batch declared (all but cancelled ones), in the order they were made."""
    query = (
        select(payment_attempts)
        .where(payment_attempts.c.batch_id == batch_id, payment_attempts.c.state != model.CANCELLED)
        .order_by(payment_attempts.c.id)
    )
    return [dict(row) for row in (await uow.execute(query)).mappings()]


async def open_items(uow: UnitOfWork, batch_id: str) -> list[dict[str, Any]]:
    """The batch's items still waiting for their outcome."""
    query = (
        select(payment_attempts.c.end_to_end_id, payment_attempts.c.state)
        .where(
            payment_attempts.c.batch_id == batch_id,
            payment_attempts.c.state.in_(list(model.ATTEMPT_OPEN)),
        )
        .order_by(payment_attempts.c.id)
    )
    return [dict(row) for row in (await uow.execute(query)).mappings()]


async def lock_batch_installments(uow: UnitOfWork, batch_id: str) -> None:
    """Lock the installments of a batch's attempts, in id order."""
    if not uow.postgres:
        return  # SQLite serialises writers with its database lock
    lock = (
        select(installments.c.id)
        .where(
            installments.c.id.in_(
                select(payment_attempts.c.installment_id).where(
                    payment_attempts.c.batch_id == batch_id
                )
            )
        )
        .order_by(installments.c.id)
    )
    await uow.execute(uow.for_update(lock))


# -- accounts resolved on the day a batch is first sent -----------------------------------------


async def attempts_to_resolve(
    uow: UnitOfWork, batch_id: str, pay_date: date
) -> Sequence[RowMapping]:
    """The batch's first attempts still waiting, each with the beneficiary's current method:
    whether it may pay on `pay_date` (else why not), its counterparty and its payee."""
    account_number, account_name = payee_sql()
    query = text(
        f"""
        SELECT a.id AS attempt_id, i.id AS installment_id, i.beneficiary_id, a.amount,
               i.method_id AS approved_method_id,
               CASE WHEN {usable_sql()} THEN 1 ELSE 0 END AS usable,
               CASE WHEN {usable_sql()} THEN NULL ELSE {hold_reason_sql()} END AS reason,
               {counterparty_sql()} AS counterparty, pm.method, pm.method_id,
               {account_number} AS account_number, {account_name} AS account_name
        FROM payment_attempts a
        JOIN installments i ON i.id = a.installment_id AND i.attempt_no = a.attempt_no
        LEFT JOIN payment_methods pm ON pm.beneficiary_id = i.beneficiary_id
        LEFT JOIN beneficiaries b ON b.beneficiary_id = i.beneficiary_id
        WHERE a.batch_id = :batch_id AND a.state = 'CREATED' AND a.attempt_no = 1
          AND i.state = 'SCHEDULED'
        ORDER BY a.id
        """
    )
    rows: Sequence[RowMapping] = (
        (await uow.execute(query, {"batch_id": batch_id, "pay_date": pay_date})).mappings().all()
    )
    return rows


async def keep_in_batch(uow: UnitOfWork, kept: Sequence[RowMapping]) -> None:
    """Attempts that still pay through the batch's counterparty take the current method."""
    if not kept:
        return
    await uow.execute(
        *update_by_key(
            uow.postgres,
            payment_attempts,
            "id",
            ("channel", "account_number", "account_name"),
            [
                {
                    "id": r["attempt_id"],
                    "channel": r["method"],
                    "account_number": r["account_number"],
                    "account_name": r["account_name"],
                }
                for r in kept
            ],
        )
    )
    await uow.execute(
        *update_by_key(
            uow.postgres,
            installments,
            "id",
            ("channel", "method_id", "updated_at"),
            [
                {
                    "id": r["installment_id"],
                    "channel": r["method"],
                    "method_id": r["method_id"],
                    "updated_at": uow.now,
                }
                for r in kept
            ],
        )
    )


async def take_out_of_batch(
    uow: UnitOfWork, moved: Sequence[RowMapping], batch_id: str | None = None
) -> None:
    """Attempts never seen by any counterparty go, and their installments wait with the reason
    (as if their cycle had just found this method). The batch (`batch_id`) keeps the count and
    sum taken out, so what its approval released stays accounted for."""
    if not moved:
        return
    if batch_id is not None:
        await uow.execute(
            update(batches)
            .where(batches.c.batch_id == batch_id)
            .values(
                withdrawn_count=batches.c.withdrawn_count + len(moved),
                withdrawn_sum=batches.c.withdrawn_sum + sum(int(r["amount"]) for r in moved),
            )
        )
    await uow.execute(
        payment_attempts.delete().where(payment_attempts.c.id.in_([r["attempt_id"] for r in moved]))
    )
    await hold_installments(
        uow, [(r["installment_id"], r["reason"] or model.HOLD_METHOD_CHANGED) for r in moved]
    )


async def hold_installments(uow: UnitOfWork, held: Sequence[tuple[int, str]]) -> None:
    """SCHEDULED installments (id, reason) ON_HOLD with the reason, their attempt gone."""
    if not held:
        return
    await uow.execute(
        update(installments)
        .where(installments.c.id == bindparam("i_id"), installments.c.state == model.SCHEDULED)
        .values(
            state=model.ON_HOLD,
            hold_reason=bindparam("i_reason"),
            attempt_no=0,
            channel=None,
            counterparty=None,
            method_id=None,
            updated_at=uow.now,
        ),
        [{"i_id": installment_id, "i_reason": reason} for installment_id, reason in held],
    )


# -- items the counterparty holds -----------------------------------------------------------------


async def mark_attempts_submitted(
    uow: UnitOfWork, batch_id: str, end_to_end_ids: Sequence[str] | None
) -> list[int]:
    """The batch's waiting attempts (all, or those of `end_to_end_ids`) SUBMITTED at `uow.now`;
    their installments' ids."""
    attempt_filter = "a.batch_id = :batch_id AND a.state = 'CREATED'"
    params: dict[str, Any] = {"batch_id": batch_id, "now": uow.now}
    expanding: list[BindParameter[Any]] = []
    if end_to_end_ids is not None:
        attempt_filter += " AND a.end_to_end_id IN :e2e"
        params["e2e"] = list(end_to_end_ids)
        expanding = [bindparam("e2e", expanding=True)]
    statement = text(
        f"""
        UPDATE payment_attempts SET state = 'SUBMITTED', submitted_at = :now
        WHERE id IN (SELECT a.id FROM payment_attempts a WHERE {attempt_filter})
        RETURNING installment_id
        """
    ).bindparams(*expanding)
    return list((await uow.execute(statement, params)).scalars().all())


async def mark_installments_submitted(uow: UnitOfWork, batch_id: str) -> list[dict[str, Any]]:
    """The installments whose current attempt the counterparty took at `uow.now`, SUBMITTED if
    they were SCHEDULED, in one statement; their facts and end-to-end ids."""
    taken = (
        "a.installment_id = installments.id AND a.attempt_no = installments.attempt_no"
        " AND a.batch_id = :batch_id AND a.state = 'SUBMITTED' AND a.submitted_at = :now"
    )
    facts = (
        "installments.id, installments.entitlement_id, installments.beneficiary_id,"
        " installments.period, installments.amount, installments.scheme, installments.agency,"
        " installments.channel, installments.counterparty, installments.commune_code,"
        " installments.commune_list_date"
    )
    if uow.postgres:
        statement = text(
            f"UPDATE installments SET state = 'SUBMITTED', updated_at = :now"
            f" FROM payment_attempts a WHERE {taken} AND installments.state = 'SCHEDULED'"
            f" RETURNING {facts}, a.end_to_end_id"
        )
    else:
        # SQLite's RETURNING may not name the tables of an UPDATE's FROM: a subquery instead.
        statement = text(
            f"UPDATE installments SET state = 'SUBMITTED', updated_at = :now"
            f" WHERE installments.state = 'SCHEDULED'"
            f" AND EXISTS (SELECT 1 FROM payment_attempts a WHERE {taken})"
            f" RETURNING {facts}, (SELECT a.end_to_end_id FROM payment_attempts a WHERE {taken})"
            f" AS end_to_end_id"
        )
    rows = (await uow.execute(statement, {"batch_id": batch_id, "now": uow.now})).mappings()
    return [dict(row) for row in rows]


# -- outcomes -----------------------------------------------------------------------------------


async def keep_new_callback_events(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the callback event ids (in the order given); the ids not seen before."""
    if not rows:
        return set()
    # One cached statement sent for many parameter sets (a multi-row VALUES would be compiled
    # anew for every delivery size).
    statement = (
        uow.insert(callback_events)
        .on_conflict_do_nothing(index_elements=["counterparty", "event_id"])
        .returning(callback_events.c.event_id)
    )
    return set((await uow.execute(statement, list(rows))).scalars())


async def files_members(
    uow: UnitOfWork, counterparty: str, file_ids: set[str]
) -> dict[str, list[str]]:
    """The end-to-end ids of each of our files (batches) sent to `counterparty`."""
    members = (
        await uow.execute(
            select(payment_attempts.c.batch_id, payment_attempts.c.end_to_end_id)
            .where(
                payment_attempts.c.batch_id.in_(file_ids),
                payment_attempts.c.counterparty == counterparty,
            )
            .order_by(payment_attempts.c.end_to_end_id)
        )
    ).all()
    by_file: dict[str, list[str]] = {}
    for batch_id, e2e in members:
        by_file.setdefault(batch_id, []).append(e2e)
    return by_file


async def payments_named(uow: UnitOfWork, end_to_end_ids: set[str]) -> list[dict[str, Any]]:
    """The attempts of these end-to-end ids with their installments (locked, in id order): the
    installment's columns and the attempt's as `a_id`, `a_no`, `a_e2e`, `a_counterparty`,
    `a_channel`."""
    a = payment_attempts
    query = (
        select(
            installments,
            a.c.id.label("a_id"),
            a.c.attempt_no.label("a_no"),
            a.c.end_to_end_id.label("a_e2e"),
            a.c.counterparty.label("a_counterparty"),
            a.c.channel.label("a_channel"),
        )
        .select_from(installments.join(a, a.c.installment_id == installments.c.id))
        .where(a.c.end_to_end_id.in_(sorted(end_to_end_ids)))
        .order_by(installments.c.id)
    )
    rows = (await uow.execute(uow.for_update(query, of=installments))).mappings()
    return [dict(row) for row in rows]


async def update_installments(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await uow.execute(
            *update_by_key(
                uow.postgres, installments, "id", (*INSTALLMENT_CHANGES, "updated_at"), rows
            )
        )


async def update_attempts(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await uow.execute(
            *update_by_key(uow.postgres, payment_attempts, "id", ATTEMPT_CHANGES, rows)
        )


async def create_cash_attempts(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """The second attempt of installments sent to the post office: paid in cash to the person,
    named as the payout knows them."""
    if not rows:
        return
    people = {
        r["beneficiary_id"]: r
        for r in (
            await uow.execute(
                select(
                    beneficiaries.c.beneficiary_id,
                    beneficiaries.c.full_name,
                    beneficiaries.c.commune_code,
                ).where(beneficiaries.c.beneficiary_id.in_({row["beneficiary_id"] for row in rows}))
            )
        ).mappings()
    }
    values = []
    for row in rows:
        person = people.get(row["beneficiary_id"])
        values.append(
            {
                "installment_id": row["id"],
                "attempt_no": 2,
                "end_to_end_id": model.end_to_end_id(row["id"], 2),
                "cycle_id": row["cycle_id"],
                "channel": model.CASH_POST_OFFICE,
                "counterparty": model.VNPOST,
                "amount": row["amount"],
                "account_number": None,
                "account_name": person["full_name"] if person else "",
                "commune_code": person["commune_code"] if person else row["commune_code"],
                "remittance_info": f"{row['agency']} {row['scheme']} {row['period']}",
                "state": model.CREATED,
                "created_at": uow.now,
            }
        )
    await uow.execute(
        uow.insert(payment_attempts)
        .values(values)
        .on_conflict_do_nothing(index_elements=["installment_id", "attempt_no"])
    )


async def flag_methods(uow: UnitOfWork, flags: Sequence[tuple[str, str | None, str]]) -> None:
    """Verified methods a bank refused for good (beneficiary, method or None for any, code)."""
    for beneficiary_id, method_id, code in flags:
        condition = payment_methods.c.beneficiary_id == beneficiary_id
        if method_id is not None:
            condition = condition & (payment_methods.c.method_id == method_id)
        await uow.execute(
            update(payment_methods)
            .where(condition, payment_methods.c.status == model.METHOD_VERIFIED)
            .values(status=model.METHOD_FLAGGED, status_reason=code, updated_at=uow.now)
        )


async def add_anomalies(uow: UnitOfWork, anomalies: Sequence[dict[str, Any]]) -> None:
    if anomalies:
        await uow.execute(insert(payment_anomalies), list(anomalies))
