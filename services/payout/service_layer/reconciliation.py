"""Reconciliation: a counterparty's statement for one day matched against our ledger."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.adapters.orm import (
    installments,
    payment_attempts,
    reconciliation_lines,
    reconciliation_runs,
)
from services.payout.domain.periods import VN_TZ
from services.payout.domain.reconciliation import BankEntry, LedgerEntry, match, summarise

CHUNK = 5000


def vn_day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=VN_TZ)
    return start, start + timedelta(days=1)


async def reconcile(
    session: AsyncSession,
    counterparty: str,
    day: date,
    statement: Sequence[BankEntry],
    created_by: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    a = payment_attempts
    known: dict[str, LedgerEntry] = {}
    ids = sorted({entry.end_to_end_id for entry in statement})
    for start in range(0, len(ids), CHUNK):
        for row in (
            await session.execute(
                select(a.c.end_to_end_id, a.c.installment_id, a.c.amount, a.c.state, a.c.counterparty)
                .where(a.c.end_to_end_id.in_(ids[start : start + CHUNK]))
            )
        ).all():
            known[row[0]] = LedgerEntry(row[0], int(row[1]), int(row[2]), row[3], row[4])
    day_start, day_end = vn_day_bounds(day)
    ours_that_day = {
        row[0]: LedgerEntry(row[0], int(row[1]), int(row[2]), row[3], row[4])
        for row in (
            await session.execute(
                select(a.c.end_to_end_id, a.c.installment_id, a.c.amount, a.c.state, a.c.counterparty)
                .select_from(a.join(installments, installments.c.id == a.c.installment_id))
                .where(
                    a.c.counterparty == counterparty,
                    a.c.state.in_(["SETTLED", "PAID_CASH", "RETURNED"]),
                    a.c.attempt_no == installments.c.attempt_no,
                    installments.c.settled_at >= day_start,
                    installments.c.settled_at < day_end,
                )
            )
        ).all()
    }
    ledger_total = sum(e.amount for e in ours_that_day.values() if e.state in ("SETTLED", "PAID_CASH"))
    lines = match(counterparty, list(statement), known, ours_that_day)
    summary = summarise(lines, list(statement), ledger_total)
    run_id = (
        await session.execute(
            insert(reconciliation_runs)
            .values(counterparty=counterparty, statement_date=day, created_at=now,
                    created_by=created_by, summary=summary)
            .returning(reconciliation_runs.c.id)
        )
    ).scalar_one()
    rows = [
        {
            "run_id": run_id,
            "kind": line.kind,
            "end_to_end_id": line.end_to_end_id[:64],
            "installment_id": line.installment_id,
            "our_amount": line.our_amount,
            "bank_amount": line.bank_amount,
            "our_state": line.our_state,
            "bank_status": line.bank_status,
            "bank_reference": (line.bank_reference or None) and line.bank_reference[:64],
        }
        for line in lines
    ]
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(reconciliation_lines), rows[start : start + CHUNK])
    return int(run_id), summary
