"""Account verification's statements: pending rows claimed under a lease, and each result
written to the verification and to the payment method it checked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.engine import RowMapping

from services.payout.adapters.orm import payment_methods, verifications
from services.payout.domain import model
from shared.uow import UnitOfWork


def _due(now: datetime) -> ColumnElement[bool]:
    return ((verifications.c.state == "PENDING") & (verifications.c.next_attempt_at <= now)) | (
        (verifications.c.state == "IN_PROGRESS") & (verifications.c.lease_until < now)
    )


async def claim_due(uow: UnitOfWork, limit: int, lease_seconds: float) -> list[RowMapping]:
    """Lease up to `limit` due verifications (`FOR UPDATE SKIP LOCKED`, then a compare-and-set);
    the rows taken, as they were before the claim."""
    due = _due(uow.now)
    query = select(verifications).where(due).order_by(verifications.c.id).limit(limit)
    rows: Sequence[RowMapping] = (
        (await uow.execute(uow.for_update(query, skip_locked=True))).mappings().all()
    )
    if not rows:
        return []
    taken = set(
        (
            await uow.execute(
                update(verifications)
                .where(verifications.c.id.in_([row["id"] for row in rows]), due)
                .values(
                    state="IN_PROGRESS",
                    lease_until=uow.now + timedelta(seconds=lease_seconds),
                    attempts=verifications.c.attempts + 1,
                )
                .returning(verifications.c.id)
            )
        )
        .scalars()
        .all()
    )
    return [row for row in rows if row["id"] in taken]


async def retry_later(uow: UnitOfWork, verification_id: int, at: datetime) -> None:
    """The bank could not be asked: the verification waits until `at`."""
    await uow.execute(
        update(verifications)
        .where(verifications.c.id == verification_id, verifications.c.state == "IN_PROGRESS")
        .values(state="PENDING", lease_until=None, next_attempt_at=at)
    )


async def finish(uow: UnitOfWork, verification_id: int, state: str, reason: str | None) -> bool:
    """The verification's result; False if a newer method superseded it meanwhile."""
    done = await uow.execute(
        update(verifications)
        .where(verifications.c.id == verification_id, verifications.c.state == "IN_PROGRESS")
        .values(state=state, reason=reason, lease_until=None, completed_at=uow.now)
    )
    return bool(done.rowcount == 1)


async def settle_method(uow: UnitOfWork, method_id: str, **values: Any) -> None:
    """The pending method's status from its verification."""
    await uow.execute(
        update(payment_methods)
        .where(
            payment_methods.c.method_id == method_id,
            payment_methods.c.status == model.METHOD_PENDING,
        )
        .values(updated_at=uow.now, **values)
    )
