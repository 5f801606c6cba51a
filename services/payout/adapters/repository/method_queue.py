"""The queue of payment methods a person must fix: accounts whose verification failed or that a
bank flagged, with the reason and the person's commune, a page after a beneficiary id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select

from services.payout.adapters.orm import beneficiaries, entitlements, payment_methods
from services.payout.adapters.repository.reads import Reader

QUEUE_STATUSES = ("FAILED", "FLAGGED")


async def methods_to_fix(
    db: Reader,
    *,
    statuses: tuple[str, ...],
    agency: str | None,
    communes: frozenset[str] | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Current methods in `statuses`, oldest key first. `agency`: only the people it pays (an
    open or closed entitlement of it); `communes`: only the people living there."""
    m, b = payment_methods, beneficiaries
    query = (
        select(
            m.c.beneficiary_id,
            m.c.method_id,
            m.c.method,
            m.c.bank_bin,
            m.c.account_number,
            m.c.account_holder_name,
            m.c.representative_name,
            m.c.status,
            m.c.status_reason,
            m.c.changed_at,
            b.c.commune_code,
        )
        .select_from(m.outerjoin(b, b.c.beneficiary_id == m.c.beneficiary_id))
        .where(m.c.status.in_(statuses))
        .order_by(m.c.beneficiary_id)
        .limit(limit)
    )
    if agency is not None:
        query = query.where(
            exists().where(
                entitlements.c.beneficiary_id == m.c.beneficiary_id,
                entitlements.c.agency == agency,
            )
        )
    if communes is not None:
        query = query.where(b.c.commune_code.in_(sorted(communes)))
    if after is not None:
        query = query.where(m.c.beneficiary_id > after)
    return [dict(row) for row in (await db.execute(query)).mappings()]
