"""Matching a counterparty's statement for one day against our ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from shared.periods import VIETNAM

# DUPLICATE: a second statement line for the same end-to-end id and status (money moved twice
# at the counterparty for one of our references).
LineKind = Literal[
    "MATCHED", "MISSING_AT_BANK", "UNKNOWN_TO_US", "AMOUNT_DIFFERS", "STATUS_DIFFERS", "DUPLICATE"
]
LINE_KINDS: tuple[LineKind, ...] = (
    "MATCHED",
    "MISSING_AT_BANK",
    "UNKNOWN_TO_US",
    "AMOUNT_DIFFERS",
    "STATUS_DIFFERS",
    "DUPLICATE",
)

# Our attempt state -> the statement status that confirms it.
CONFIRMING_STATUS = {"SETTLED": "CREDITED", "PAID_CASH": "PAID", "RETURNED": "RETURNED"}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    end_to_end_id: str
    installment_id: int
    amount: int
    state: str  # our attempt state
    counterparty: str  # who our attempt was sent to


@dataclass(frozen=True, slots=True)
class BankEntry:
    end_to_end_id: str
    amount: int
    status: str  # CREDITED | RETURNED (banks), PAID | RETURNED (post office)
    bank_reference: str | None


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    end_to_end_id: str
    installment_id: int | None
    our_amount: int | None
    bank_amount: int | None
    our_state: str | None
    bank_status: str | None
    bank_reference: str | None


def match(
    counterparty: str,
    statement: list[BankEntry],
    known: dict[str, LedgerEntry],
    ours_that_day: dict[str, LedgerEntry],
) -> list[Line]:
    """`counterparty`: whose statement it is; `known`: our attempts for every end-to-end id on
    the statement; `ours_that_day`: what our ledger says was finalised with this counterparty
    that day. A line matches an attempt only by counterparty and end-to-end id together, and
    only once: the same id and status again is a DUPLICATE."""
    lines: list[Line] = []
    seen: set[str] = set()
    lines_seen: set[tuple[str, str]] = set()
    for entry in statement:
        seen.add(entry.end_to_end_id)
        ours = known.get(entry.end_to_end_id)
        if ours is not None and ours.counterparty != counterparty:
            ours = None  # our reference, but we never sent it to this counterparty
        if ours is None:
            lines.append(
                Line(
                    "UNKNOWN_TO_US",
                    entry.end_to_end_id,
                    None,
                    None,
                    entry.amount,
                    None,
                    entry.status,
                    entry.bank_reference,
                )
            )
            continue
        key = (entry.end_to_end_id, entry.status)
        if key in lines_seen:
            lines.append(
                Line(
                    "DUPLICATE",
                    entry.end_to_end_id,
                    ours.installment_id,
                    ours.amount,
                    entry.amount,
                    ours.state,
                    entry.status,
                    entry.bank_reference,
                )
            )
            continue
        lines_seen.add(key)
        if ours.amount != entry.amount:
            kind: LineKind = "AMOUNT_DIFFERS"
        elif CONFIRMING_STATUS.get(ours.state) != entry.status:
            kind = "STATUS_DIFFERS"
        else:
            kind = "MATCHED"
        lines.append(
            Line(
                kind,
                entry.end_to_end_id,
                ours.installment_id,
                ours.amount,
                entry.amount,
                ours.state,
                entry.status,
                entry.bank_reference,
            )
        )
    for e2e, ours in ours_that_day.items():
        if e2e not in seen:
            lines.append(
                Line(
                    "MISSING_AT_BANK",
                    e2e,
                    ours.installment_id,
                    ours.amount,
                    None,
                    ours.state,
                    None,
                    None,
                )
            )
    return lines


def summarise(lines: list[Line], statement: list[BankEntry], ledger_total: int) -> dict:
    counts = dict.fromkeys(LINE_KINDS, 0)
    sums = dict.fromkeys(LINE_KINDS, 0)
    for line in lines:
        counts[line.kind] += 1
        sums[line.kind] += (
            line.bank_amount if line.bank_amount is not None else (line.our_amount or 0)
        )
    statement_total = sum(e.amount for e in statement if e.status in ("CREDITED", "PAID"))
    return {
        "counts": counts,
        "sums": sums,
        "statement_entries": len(statement),
        "statement_total": statement_total,
        "ledger_total": ledger_total,
        "difference": statement_total - ledger_total,
        "balanced": all(counts[k] == 0 for k in LINE_KINDS if k != "MATCHED")
        and statement_total == ledger_total,
    }


def vietnam_day(day: date) -> tuple[datetime, datetime]:
    """The instants [start, end) of a statement's day, a day in Vietnam."""
    start = datetime.combine(day, time.min, tzinfo=VIETNAM)
    return start, start + timedelta(days=1)
