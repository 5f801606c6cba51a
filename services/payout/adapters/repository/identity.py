"""Every statement of identity revalidation in payout: intake's parts and holds as received, and
the installments they hold (scheduled ones in batches still awaiting approval, and ones already
waiting for another reason)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import RowMapping

from services.payout.adapters.identity_tables import identity_holds, revalidation_parts
from services.payout.adapters.orm import batches, cycles, installments, payment_attempts
from services.payout.domain import model
from services.payout.domain.identity import IDENTITY_HOLD_REASONS
from shared.uow import UnitOfWork

Executor = Any  # a connection, a session or a unit of work


async def record_part(
    uow: UnitOfWork,
    period: str,
    part: int,
    last: bool,
    checked: int,
    holds: int,
    completed_at: datetime,
) -> bool:
    """Keep a part of a period's answer; False when it was already kept."""
    result = await uow.execute(
        uow.insert(revalidation_parts)
        .values(
            period=period,
            part=part,
            last=last,
            checked=checked,
            holds=holds,
            completed_at=completed_at,
            received_at=uow.now,
        )
        .on_conflict_do_nothing(index_elements=["period", "part"])
    )
    return bool(result.rowcount)


async def record_holds(uow: UnitOfWork, period: str, holds: Sequence[tuple[str, str]]) -> None:
    if holds:
        await uow.execute(
            uow.insert(identity_holds).on_conflict_do_nothing(
                index_elements=["period", "beneficiary_id"]
            ),
            [
                {"period": period, "beneficiary_id": b, "outcome": o, "received_at": uow.now}
                for b, o in holds
            ],
        )


async def parts_received(db: Executor, period: str) -> tuple[int, int | None]:
    """How many parts of the period arrived, and the number of its last part if that came."""
    p = revalidation_parts.c
    count, last = (
        await db.execute(
            select(
                func.count(),
                func.max(p.part).filter(p.last.is_(True)),
            ).where(p.period == period)
        )
    ).one()
    return int(count), (int(last) if last is not None else None)


async def locked_cycle(uow: UnitOfWork, period: str) -> int | None:
    """The period's cycle, its row locked as the cycle's own steps lock it; None without one."""
    query = uow.for_update(select(cycles.c.id).where(cycles.c.period == period), key_share=True)
    found = (await uow.execute(query)).scalar_one_or_none()
    return int(found) if found is not None else None


async def scheduled_to_hold(uow: UnitOfWork, cycle_id: int, period: str) -> list[RowMapping]:
    """The cycle's SCHEDULED installments of the period whose holder is held, with their waiting
    attempt, when it is in no batch yet or in one still PREPARED; locked."""
    i, a, b, h = installments.c, payment_attempts.c, batches.c, identity_holds.c
    query = (
        select(
            i.id,
            i.entitlement_id,
            i.beneficiary_id,
            i.period,
            i.amount,
            i.scheme,
            i.agency,
            i.channel,
            i.counterparty,
            i.commune_code,
            i.commune_list_date,
            h.outcome,
            a.id.label("attempt_id"),
            a.batch_id,
        )
        .select_from(
            installments.join(
                identity_holds,
                and_(h.period == i.period, h.beneficiary_id == i.beneficiary_id),
            )
            .join(
                payment_attempts,
                and_(
                    a.installment_id == i.id,
                    a.attempt_no == i.attempt_no,
                    a.state == model.CREATED,
                ),
            )
            .outerjoin(batches, b.batch_id == a.batch_id)
        )
        .where(
            i.cycle_id == cycle_id,
            i.period == period,
            i.state == model.SCHEDULED,
            or_(a.batch_id.is_(None), b.state == model.BATCH_PREPARED),
        )
        .order_by(i.id)
    )
    rows = await uow.execute(uow.for_update(query, of=installments))
    return list(rows.mappings().all())


async def prepared_batches(uow: UnitOfWork, batch_ids: Sequence[str]) -> set[str]:
    """Those of `batch_ids` still PREPARED, locked: no approval releases them meanwhile."""
    if not batch_ids:
        return set()
    query = uow.for_update(
        select(batches.c.batch_id, batches.c.state).where(batches.c.batch_id.in_(list(batch_ids)))
    )
    rows = await uow.execute(query)
    return {row.batch_id for row in rows if row.state == model.BATCH_PREPARED}


async def cancel_attempts_out_of_batches(uow: UnitOfWork, attempt_ids: Sequence[int]) -> None:
    if attempt_ids:
        await uow.execute(
            update(payment_attempts)
            .where(
                payment_attempts.c.id.in_(list(attempt_ids)),
                payment_attempts.c.state == model.CREATED,
            )
            .values(state=model.CANCELLED, batch_id=None, finished_at=uow.now)
        )


async def waiting_to_relabel(uow: UnitOfWork, cycle_id: int, period: str) -> list[RowMapping]:
    """The cycle's installments of the period already ON_HOLD for a reason a payment method
    could lift, whose holder is held: (id, outcome)."""
    i, h = installments.c, identity_holds.c
    kept = (*IDENTITY_HOLD_REASONS, model.HOLD_DUPLICATE_ENTITLEMENT)
    query = (
        select(i.id, h.outcome)
        .select_from(
            installments.join(
                identity_holds,
                and_(h.period == i.period, h.beneficiary_id == i.beneficiary_id),
            )
        )
        .where(
            i.cycle_id == cycle_id,
            i.period == period,
            i.state == model.ON_HOLD,
            or_(i.hold_reason.is_(None), i.hold_reason.not_in(kept)),
        )
        .order_by(i.id)
    )
    rows = await uow.execute(uow.for_update(query, of=installments))
    return list(rows.mappings().all())


async def relabel_held(uow: UnitOfWork, relabelled: Sequence[tuple[int, str]]) -> None:
    if relabelled:
        await uow.execute(
            update(installments)
            .where(installments.c.id == bindparam("i_id"), installments.c.state == model.ON_HOLD)
            .values(hold_reason=bindparam("i_reason"), updated_at=uow.now),
            [{"i_id": installment_id, "i_reason": reason} for installment_id, reason in relabelled],
        )
