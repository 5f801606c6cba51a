"""Statements of the payout's view of intake's world: beneficiaries, entitlements, payment
methods and the verifications they wait for. Executed on the caller's unit of work."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping

from services.payout.adapters.orm import beneficiaries, entitlements, payment_methods, verifications
from services.payout.domain import model
from shared.uow import UnitOfWork


async def upsert_beneficiary(uow: UnitOfWork, beneficiary_id: str, values: dict[str, Any]) -> None:
    await uow.execute(
        uow.insert(beneficiaries)
        .values(beneficiary_id=beneficiary_id, **values)
        .on_conflict_do_update(index_elements=["beneficiary_id"], set_=values)
    )


async def insert_entitlement(uow: UnitOfWork, values: dict[str, Any]) -> None:
    """The entitlement as first granted; a redelivery changes nothing."""
    await uow.execute(
        uow.insert(entitlements)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["entitlement_id"])
    )


async def current_method(uow: UnitOfWork, beneficiary_id: str) -> RowMapping | None:
    row = await uow.execute(
        select(payment_methods).where(payment_methods.c.beneficiary_id == beneficiary_id)
    )
    return row.mappings().first()


async def supersede_verifications(uow: UnitOfWork, beneficiary_id: str) -> None:
    """Verifications still to make for this person's previous method no longer matter."""
    await uow.execute(
        update(verifications)
        .where(
            verifications.c.beneficiary_id == beneficiary_id,
            verifications.c.state.in_(["PENDING", "IN_PROGRESS"]),
        )
        .values(state="SUPERSEDED", completed_at=uow.now)
    )


async def upsert_method(uow: UnitOfWork, beneficiary_id: str, values: dict[str, Any]) -> None:
    await uow.execute(
        uow.insert(payment_methods)
        .values(beneficiary_id=beneficiary_id, **values)
        .on_conflict_do_update(index_elements=["beneficiary_id"], set_=values)
    )


async def beneficiary_name(uow: UnitOfWork, beneficiary_id: str) -> str | None:
    name = await uow.execute(
        select(beneficiaries.c.full_name).where(beneficiaries.c.beneficiary_id == beneficiary_id)
    )
    return name.scalar()


async def request_verification(uow: UnitOfWork, values: dict[str, Any]) -> None:
    """A PENDING verification of a method, for the verification worker; one per method."""
    await uow.execute(
        uow.insert(verifications)
        .values(**values, state="PENDING", attempts=0, next_attempt_at=uow.now, created_at=uow.now)
        .on_conflict_do_nothing(index_elements=["method_id"])
    )


async def fail_method(uow: UnitOfWork, method_id: str, reason: str) -> None:
    await uow.execute(
        update(payment_methods)
        .where(payment_methods.c.method_id == method_id)
        .values(status=model.METHOD_FAILED, status_reason=reason, updated_at=uow.now)
    )
