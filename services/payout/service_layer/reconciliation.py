"""Reconciliation: a counterparty's statement for one day matched against our ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from services.payout.adapters.repository import reconciliations as repository
from services.payout.domain.reconciliation import BankEntry, match, summarise, vietnam_day
from shared.uow import UnitOfWork


async def reconcile(
    uow: UnitOfWork, counterparty: str, day: date, statement: Sequence[BankEntry], created_by: str
) -> tuple[int, dict[str, Any]]:
    known = await repository.attempts_named(uow, [entry.end_to_end_id for entry in statement])
    ours_that_day = await repository.settled_between(uow, counterparty, *vietnam_day(day))
    ledger_total = sum(
        e.amount for e in ours_that_day.values() if e.state in ("SETTLED", "PAID_CASH")
    )
    lines = match(counterparty, list(statement), known, ours_that_day)
    summary = summarise(lines, list(statement), ledger_total)
    run_id = await repository.add_run(
        uow,
        counterparty,
        day,
        created_by,
        summary,
        [
            {
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
        ],
    )
    return run_id, summary
