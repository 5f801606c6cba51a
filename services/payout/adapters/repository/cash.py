"""The post office's cash lists: the cash items (VNPOST attempts) of batches handed to the post
office, per commune and period, with the state of their installment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.payout.adapters.orm import batches, installments, payment_attempts
from services.payout.adapters.repository.reads import Reader
from services.payout.domain import model

# A batch the post office has: sent and taken (its lists exist at the counters).
HANDED_OVER = (model.BATCH_SUBMITTED, model.BATCH_COMPLETED)


def _items() -> Any:
    a, i, b = payment_attempts, installments, batches
    return (
        select(
            a.c.end_to_end_id,
            a.c.installment_id,
            a.c.attempt_no,
            a.c.amount,
            a.c.account_name,
            a.c.batch_id,
            a.c.state.label("attempt_state"),
            i.c.beneficiary_id,
            i.c.period,
            i.c.agency,
            i.c.scheme,
            i.c.commune_code,
            i.c.state,
            i.c.attempt_no.label("current_attempt_no"),
            i.c.reason_code,
            i.c.paid_on,
            i.c.staff_id,
        )
        .select_from(a.join(i, i.c.id == a.c.installment_id).join(b, b.c.batch_id == a.c.batch_id))
        .where(a.c.counterparty == model.VNPOST, b.c.state.in_(HANDED_OVER))
    )


async def cash_items(
    db: Reader,
    *,
    period: str | None,
    commune: str | None,
    communes: frozenset[str] | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of cash items in end-to-end id order; `communes`: only those communes'."""
    a, i = payment_attempts, installments
    query = _items().order_by(a.c.end_to_end_id).limit(limit)
    if period is not None:
        query = query.where(i.c.period == period)
    if commune is not None:
        query = query.where(i.c.commune_code == commune)
    if communes is not None:
        query = query.where(i.c.commune_code.in_(sorted(communes)))
    if after is not None:
        query = query.where(a.c.end_to_end_id > after)
    return [dict(row) for row in (await db.execute(query)).mappings()]


async def cash_item(db: Reader, end_to_end_id: str) -> dict[str, Any] | None:
    row = (
        (await db.execute(_items().where(payment_attempts.c.end_to_end_id == end_to_end_id)))
        .mappings()
        .first()
    )
    return dict(row) if row else None
