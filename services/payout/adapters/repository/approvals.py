"""Statements of approval: what awaits approval for a cycle and an agency, the approvals trail,
the batches an approval releases, funds envelopes and the payment calendar. Every function
executes on the caller's unit of work (or a reader) and never commits."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select, update

from services.payout.adapters.orm import (
    batches,
    cycle_approvals,
    cycles,
    envelopes,
    installments,
    payment_attempts,
    payment_calendar,
)
from services.payout.adapters.repository.reads import Reader, Streamer
from services.payout.domain import model
from services.payout.domain.approval import APPROVE, Item
from shared.uow import UnitOfWork

# -- what awaits approval -----------------------------------------------------------------------


STREAM_CHUNK = 500  # rows a server-side cursor hands over at a time


async def awaiting_items(
    db: Streamer, cycle_id: int, agency: str, *, chunk: int = STREAM_CHUNK
) -> AsyncGenerator[list[Item], None]:
    """The attempts in the agency's PREPARED batches of the cycle (all but cancelled ones), in
    the digest's order (installment id, then counterparty; the attempt's id breaks a tie), from
    a server-side cursor `chunk` at a time: a part of a million never sits in memory. Use it in
    `contextlib.aclosing` so a consumer that stops early closes the cursor."""
    a, i, b = payment_attempts, installments, batches
    query = (
        select(
            a.c.installment_id, a.c.amount, i.c.scheme, a.c.channel, a.c.counterparty, i.c.method_id
        )
        .select_from(a.join(b, b.c.batch_id == a.c.batch_id).join(i, i.c.id == a.c.installment_id))
        .where(
            b.c.cycle_id == cycle_id,
            b.c.agency == agency,
            b.c.state == model.BATCH_PREPARED,
            a.c.state != model.CANCELLED,
        )
        .order_by(a.c.installment_id, a.c.counterparty, a.c.id)
        .execution_options(yield_per=chunk)
    )
    rows = await db.stream(query)
    try:
        async for part in rows.partitions():
            yield [Item(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in part]
    finally:
        await rows.close()


async def awaiting_batches(db: Reader, cycle_id: int) -> list[dict[str, Any]]:
    """The cycle's PREPARED batches, with their control totals (a checker is shown each)."""
    query = (
        select(
            batches.c.batch_id,
            batches.c.agency,
            batches.c.counterparty,
            batches.c.control_count,
            batches.c.control_sum,
            batches.c.execution_date,
            batches.c.prepared_by,
        )
        .where(batches.c.cycle_id == cycle_id, batches.c.state == model.BATCH_PREPARED)
        .order_by(batches.c.batch_id)
    )
    return [dict(r) for r in (await db.execute(query)).mappings()]


async def awaiting_agencies(db: Reader, cycle_id: int) -> list[str]:
    rows = await db.execute(
        select(batches.c.agency)
        .where(batches.c.cycle_id == cycle_id, batches.c.state == model.BATCH_PREPARED)
        .distinct()
        .order_by(batches.c.agency)
    )
    return list(rows.scalars())


async def awaiting_preparers(db: Reader, cycle_id: int, agency: str) -> dict[str, int]:
    """Who prepared the agency's PREPARED batches of the cycle, and how many each."""
    rows = await db.execute(
        select(batches.c.prepared_by, func.count())
        .where(
            batches.c.cycle_id == cycle_id,
            batches.c.agency == agency,
            batches.c.state == model.BATCH_PREPARED,
        )
        .group_by(batches.c.prepared_by)
    )
    return {preparer: int(count) for preparer, count in rows.all()}


async def release_batches(
    uow: UnitOfWork, cycle_id: int, agency: str, approval_id: int, earliest: date
) -> int:
    """The agency's PREPARED batches of the cycle move PREPARED → READY, stamped with the
    approval, executed no earlier than `earliest` (today); how many. Set-based: two statements
    however many batches (the cycle's row is locked, so they are the ones approved)."""
    released = await uow.execute(
        update(batches)
        .where(
            batches.c.cycle_id == cycle_id,
            batches.c.agency == agency,
            batches.c.state == model.BATCH_PREPARED,
        )
        .values(
            state=model.BATCH_READY,
            approval_id=approval_id,
            next_attempt_at=uow.now,
            updated_at=uow.now,
        )
    )
    await uow.execute(
        update(batches)
        .where(batches.c.approval_id == approval_id, batches.c.execution_date < earliest)
        .values(execution_date=earliest)
    )
    return int(released.rowcount)


# -- the trail ------------------------------------------------------------------------------------


async def insert_approval(uow: UnitOfWork, **values: Any) -> int:
    inserted = await uow.execute(
        cycle_approvals.insert()
        .values(decided_at=uow.now, **values)
        .returning(cycle_approvals.c.id)
    )
    return int(inserted.scalar_one())


async def approvals(db: Reader, period: str) -> list[dict[str, Any]]:
    """A period's decisions, oldest first."""
    rows = await db.execute(
        select(cycle_approvals)
        .where(cycle_approvals.c.period == period)
        .order_by(cycle_approvals.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def decisions_by_period(
    db: Reader, periods: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """The decisions (agency, decision) of these periods, oldest first, per period."""
    found: dict[str, list[dict[str, Any]]] = {period: [] for period in periods}
    if periods:
        rows = await db.execute(
            select(cycle_approvals.c.period, cycle_approvals.c.agency, cycle_approvals.c.decision)
            .where(cycle_approvals.c.period.in_(list(periods)))
            .order_by(cycle_approvals.c.id)
        )
        for row in rows.mappings():
            found[row["period"]].append(dict(row))
    return found


async def approved_by_scheme(db: Reader, period: str, agency: str) -> dict[str, int]:
    """What the period's approvals for the agency have released so far, per scheme."""
    rows = await db.execute(
        select(cycle_approvals.c.totals).where(
            cycle_approvals.c.period == period,
            cycle_approvals.c.agency == agency,
            cycle_approvals.c.decision == APPROVE,
        )
    )
    approved: dict[str, int] = {}
    for (totals,) in rows.all():
        for total in totals:
            approved[total["scheme"]] = approved.get(total["scheme"], 0) + int(total["amount"])
    return approved


async def released_by_approval(db: Reader, period: str) -> dict[int, tuple[int, int]]:
    """Per approval of the period: the count and sum of the attempts its batches carry (all
    states) plus what was taken out of them unsent after it."""
    a, b = payment_attempts, batches
    carried = await db.execute(
        select(b.c.approval_id, func.count(a.c.id), func.coalesce(func.sum(a.c.amount), 0))
        .select_from(b.join(a, a.c.batch_id == b.c.batch_id))
        .where(b.c.period == period, b.c.approval_id.is_not(None))
        .group_by(b.c.approval_id)
    )
    released = {int(k): (int(c), int(s)) for k, c, s in carried.all()}
    withdrawn = await db.execute(
        select(b.c.approval_id, func.sum(b.c.withdrawn_count), func.sum(b.c.withdrawn_sum))
        .where(b.c.period == period, b.c.approval_id.is_not(None))
        .group_by(b.c.approval_id)
    )
    for k, c, s in withdrawn.all():
        count, total = released.get(int(k), (0, 0))
        released[int(k)] = (count + int(c or 0), total + int(s or 0))
    return released


# -- funds envelopes ------------------------------------------------------------------------------


async def envelopes_of(db: Reader, period: str, agency: str) -> dict[str, int]:
    rows = await db.execute(
        select(envelopes.c.scheme, envelopes.c.amount).where(
            envelopes.c.period == period, envelopes.c.agency == agency
        )
    )
    return {scheme: int(amount) for scheme, amount in rows.all()}


async def list_envelopes(db: Reader, period: str | None) -> list[dict[str, Any]]:
    query = select(envelopes).order_by(envelopes.c.period, envelopes.c.agency, envelopes.c.scheme)
    if period is not None:
        query = query.where(envelopes.c.period == period)
    return [dict(r) for r in (await db.execute(query)).mappings()]


async def set_envelopes(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace each (period, agency, scheme) envelope."""
    if not rows:
        return
    values = [{**row, "set_by": uow.actor, "set_at": uow.now} for row in rows]
    statement = uow.insert(envelopes).values(values)
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["period", "agency", "scheme"],
            set_={
                "amount": statement.excluded.amount,
                "set_by": statement.excluded.set_by,
                "set_at": statement.excluded.set_at,
            },
        )
    )


# -- the payment calendar -------------------------------------------------------------------------


async def set_calendar(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace each period's entry (its pay date and the day it is prepared)."""
    if not rows:
        return
    values = [{**row, "set_by": uow.actor, "set_at": uow.now} for row in rows]
    statement = uow.insert(payment_calendar).values(values)
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["period"],
            set_={
                "pay_date": statement.excluded.pay_date,
                "prepare_on": statement.excluded.prepare_on,
                "set_by": statement.excluded.set_by,
                "set_at": statement.excluded.set_at,
            },
        )
    )


async def list_calendar(db: Reader) -> list[dict[str, Any]]:
    rows = await db.execute(
        select(payment_calendar).order_by(payment_calendar.c.pay_date, payment_calendar.c.period)
    )
    return [dict(r) for r in rows.mappings()]


async def calendar_entry(db: Reader, period: str) -> dict[str, Any] | None:
    row = (
        (await db.execute(select(payment_calendar).where(payment_calendar.c.period == period)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def has_calendar(db: Reader) -> bool:
    return bool((await db.execute(select(func.count()).select_from(payment_calendar))).scalar())


async def periods_due(db: Reader, today: date) -> list[str]:
    """Periods the calendar prepares on or before `today` whose cycle's creation is not
    finished (or that have no cycle yet), oldest first."""
    rows = await db.execute(
        select(payment_calendar.c.period)
        .select_from(
            payment_calendar.outerjoin(cycles, cycles.c.period == payment_calendar.c.period)
        )
        .where(payment_calendar.c.prepare_on <= today, cycles.c.creation_finished_at.is_(None))
        .order_by(payment_calendar.c.period)
    )
    return list(rows.scalars())
