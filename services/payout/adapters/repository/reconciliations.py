"""Reconciliation's statements: our ledger as a statement is matched against it, and the run
with its lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select

from services.payout.adapters.orm import (
    installments,
    payment_attempts,
    reconciliation_lines,
    reconciliation_runs,
)
from services.payout.domain.reconciliation import LedgerEntry
from shared.uow import UnitOfWork

CHUNK = 5000
_a = payment_attempts
_ENTRY = (_a.c.end_to_end_id, _a.c.installment_id, _a.c.amount, _a.c.state, _a.c.counterparty)


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(row[0], int(row[1]), int(row[2]), row[3], row[4])


async def attempts_named(uow: UnitOfWork, end_to_end_ids: Sequence[str]) -> dict[str, LedgerEntry]:
    """Our attempts of these end-to-end ids, whoever they were sent to."""
    ids = sorted(set(end_to_end_ids))
    known: dict[str, LedgerEntry] = {}
    for start in range(0, len(ids), CHUNK):
        rows = await uow.execute(
            select(*_ENTRY).where(_a.c.end_to_end_id.in_(ids[start : start + CHUNK]))
        )
        known.update((row[0], _entry(row)) for row in rows.all())
    return known


async def settled_between(
    uow: UnitOfWork, counterparty: str, start: datetime, end: datetime
) -> dict[str, LedgerEntry]:
    """The current attempts with `counterparty` whose money moved (or came back) in [start, end)."""
    rows = await uow.execute(
        select(*_ENTRY)
        .select_from(_a.join(installments, installments.c.id == _a.c.installment_id))
        .where(
            _a.c.counterparty == counterparty,
            _a.c.state.in_(["SETTLED", "PAID_CASH", "RETURNED"]),
            _a.c.attempt_no == installments.c.attempt_no,
            installments.c.settled_at >= start,
            installments.c.settled_at < end,
        )
    )
    return {row[0]: _entry(row) for row in rows.all()}


async def add_run(
    uow: UnitOfWork,
    counterparty: str,
    day: date,
    created_by: str,
    summary: dict[str, Any],
    lines: Sequence[dict[str, Any]],
) -> int:
    """The run and its lines (each line's `run_id` is set here); the run's id."""
    run_id = (
        await uow.execute(
            insert(reconciliation_runs)
            .values(
                counterparty=counterparty,
                statement_date=day,
                created_at=uow.now,
                created_by=created_by,
                summary=summary,
            )
            .returning(reconciliation_runs.c.id)
        )
    ).scalar_one()
    rows = [{"run_id": run_id, **line} for line in lines]
    for start in range(0, len(rows), CHUNK):
        await uow.execute(insert(reconciliation_lines), rows[start : start + CHUNK])
    return int(run_id)
