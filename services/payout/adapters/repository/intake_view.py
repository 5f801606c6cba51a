"""Statements of the payout's view of intake's world: beneficiaries, entitlements, payment
methods and the verifications they wait for. Executed on the caller's unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, select, update
from sqlalchemy.engine import RowMapping

from services.payout.adapters.orm import beneficiaries, entitlements, payment_methods, verifications
from services.payout.domain import model
from shared.uow import UnitOfWork


async def _upsert(uow: UnitOfWork, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """One statement for many rows (executemany): each row inserted, or its columns updated."""
    if not rows:
        return
    statement = uow.insert(table)
    columns = [name for name in rows[0] if name != key]
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=[key], set_={name: statement.excluded[name] for name in columns}
        ),
        list(rows),
    )


async def _insert_new(
    uow: UnitOfWork, table: Table, key: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Rows whose key is new; a row already there is left as it is."""
    if rows:
        await uow.execute(
            uow.insert(table).on_conflict_do_nothing(index_elements=[key]), list(rows)
        )


async def upsert_beneficiaries(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(uow, beneficiaries, "beneficiary_id", rows)


async def insert_entitlements(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """Entitlements as first granted; a redelivery changes nothing."""
    await _insert_new(uow, entitlements, "entitlement_id", rows)


async def current_methods(uow: UnitOfWork, beneficiary_ids: Sequence[str]) -> dict[str, RowMapping]:
    rows = await uow.execute(
        select(payment_methods).where(payment_methods.c.beneficiary_id.in_(beneficiary_ids))
    )
    return {row["beneficiary_id"]: row for row in rows.mappings()}


async def supersede_verifications(uow: UnitOfWork, beneficiary_ids: Sequence[str]) -> None:
    """Verifications still to make for these people's previous methods no longer matter."""
    await uow.execute(
        update(verifications)
        .where(
            verifications.c.beneficiary_id.in_(beneficiary_ids),
            verifications.c.state.in_(["PENDING", "IN_PROGRESS"]),
        )
        .values(state="SUPERSEDED", completed_at=uow.now)
    )


async def upsert_methods(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """Each row the beneficiary's current method."""
    await _upsert(uow, payment_methods, "beneficiary_id", rows)


async def beneficiary_names(uow: UnitOfWork, beneficiary_ids: Sequence[str]) -> dict[str, str]:
    if not beneficiary_ids:
        return {}
    rows = await uow.execute(
        select(beneficiaries.c.beneficiary_id, beneficiaries.c.full_name).where(
            beneficiaries.c.beneficiary_id.in_(beneficiary_ids)
        )
    )
    return {row.beneficiary_id: row.full_name for row in rows}


async def request_verifications(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """A PENDING verification of each method, for the verification worker; one per method. A
    method the person comes back to (its verification superseded or finished long ago) is
    verified again: it is pending once more, and nothing else would ever verify it."""
    if not rows:
        return
    statement = uow.insert(verifications)
    reopened = {
        "expected_name": statement.excluded.expected_name,
        "bank_bin": statement.excluded.bank_bin,
        "account_number": statement.excluded.account_number,
        "state": "PENDING",
        "reason": None,
        "attempts": 0,
        "next_attempt_at": uow.now,
        "lease_until": None,
        "completed_at": None,
    }
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["method_id"],
            set_=reopened,
            # Two comparisons, not NOT IN: an expanding list would run the statement per row.
            where=and_(verifications.c.state != "PENDING", verifications.c.state != "IN_PROGRESS"),
        ),
        [
            {
                **row,
                "state": "PENDING",
                "attempts": 0,
                "next_attempt_at": uow.now,
                "created_at": uow.now,
            }
            for row in rows
        ],
    )


async def fail_method(uow: UnitOfWork, method_id: str, reason: str) -> None:
    await uow.execute(
        update(payment_methods)
        .where(payment_methods.c.method_id == method_id)
        .values(status=model.METHOD_FAILED, status_reason=reason, updated_at=uow.now)
    )
