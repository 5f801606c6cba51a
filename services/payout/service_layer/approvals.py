"""Approving what a cycle prepared, funds envelopes and the payment calendar.

An approval is one transaction: the cycle's row locked (a concurrent preparation or another
approval waits), what awaits approval for the agency recomputed and its digest compared with the
one the checker saw, the envelope checked, the decision recorded, the batches stamped with it and
moved PREPARED → READY (only then may submission claim them), and CycleApproved emitted. A
rejection records the decision and its reason; the batches stay PREPARED until a maker prepares
the cycle again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.payout.adapters.repository import approvals as repository
from services.payout.adapters.repository import cycles as cycles_repository
from services.payout.adapters.repository import reads
from services.payout.adapters.repository.reads import cycle_row
from services.payout.domain import approval as rules
from services.payout.domain.approval import APPROVE, ApprovalRefused, Awaiting
from services.payout.service_layer.revalidation import revalidation_done
from shared.auth import Principal
from shared.events.contracts import CycleApproved, EnvelopeSet, SchemeTotal
from shared.periods import add_months, vietnam_date
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


class CycleNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Decided:
    approval_id: int
    decision: str
    period: str
    agency: str
    count: int
    amount: int
    digest: str
    batches: int  # released (APPROVE) or left awaiting (REJECT)


async def awaiting_of(uow: Any, cycle_id: int, period: str, agency: str) -> Awaiting:
    """What awaits approval for the agency in the cycle, with its digest: folded a chunk at a
    time as the rows stream in, never a list of them all."""
    tally = rules.Tally()
    async with aclosing(repository.awaiting_items(uow, cycle_id, agency)) as chunks:
        async for items in chunks:
            tally.add(items)
    return tally.awaiting(period, agency)


async def decide(
    uow: UnitOfWork,
    principal: Principal,
    period: str,
    *,
    agency: str | None,
    digest: str,
    decision: str,
    reason: str | None,
) -> Decided:
    """Approve or reject what awaits approval for `agency` (default: the caller's) in the
    period's cycle; raises ApprovalRefused with why not, CycleNotFound without a cycle."""
    rules.check_reason(decision, reason)
    target = agency or principal.agency
    if target is None and not principal.is_person:
        rules.check_approver(principal, "", ())  # refused: not a person
    if target is None:
        raise ApprovalRefused(
            422, "agency-required", "Unprocessable Content", "say which agency's part (agency)"
        )
    cycle = await cycle_row(uow, period)
    if cycle is None:
        raise CycleNotFound(period)
    cycle_id = await cycles_repository.lock_cycle(uow, period)
    by_preparer = await repository.awaiting_preparers(uow, cycle_id, target)
    preparers = sorted(by_preparer)
    waiting = sum(by_preparer.values())  # batches
    rules.check_approver(principal, target, preparers)
    rules.check_prepared(
        creation_finished=cycle["creation_finished_at"] is not None,
        revalidated=await revalidation_done(uow, period),
        count=waiting,
    )
    current = await awaiting_of(uow, cycle_id, period, target)
    rules.check_digest(digest, current)
    envelopes = await repository.envelopes_of(uow, period, target)
    if decision == APPROVE:
        approved = await repository.approved_by_scheme(uow, period, target)
        rules.check_envelopes(
            rules.envelope_excesses(current.by_scheme, approved, envelopes), target
        )
    totals = [
        {
            "scheme": scheme,
            "count": total.count,
            "amount": total.amount,
            "envelope": envelopes.get(scheme),
        }
        for scheme, total in current.by_scheme.items()
    ]
    approval_id = await repository.insert_approval(
        uow,
        cycle_id=cycle_id,
        period=period,
        agency=target,
        decision=decision,
        digest=current.digest,
        count=current.count,
        amount=current.amount,
        totals=totals,
        reason=reason,
        decided_by=principal.client_id,
        decided_by_name=principal.name,
        prepared_by=", ".join(preparers)[:500],
    )
    released = 0
    if decision == APPROVE:
        released = await repository.release_batches(
            uow, cycle_id, target, approval_id, vietnam_date(uow.now)
        )
        uow.emit(
            CycleApproved(
                period=period,
                agency=target,
                approval_id=str(approval_id),
                digest=current.digest,
                approved_by=principal.client_id,
                totals=[SchemeTotal(**t) for t in totals],
                approved_at=uow.now,
            )
        )
    log.info(
        "cycle part decided",
        extra={
            "fields": {
                "period": period,
                "agency": target,
                "decision": decision,
                "approval_id": approval_id,
                "count": current.count,
                "amount": current.amount,
                "batches": released if decision == APPROVE else waiting,
            }
        },
    )
    return Decided(
        approval_id=approval_id,
        decision=decision,
        period=period,
        agency=target,
        count=current.count,
        amount=current.amount,
        digest=current.digest,
        batches=released if decision == APPROVE else waiting,
    )


async def set_envelopes(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> int:
    """Load envelopes (period, agency, scheme, amount), replacing any for the same key; one
    EnvelopeSet each."""
    await repository.set_envelopes(uow, rows)
    uow.emit(
        *(
            EnvelopeSet(
                period=row["period"],
                agency=row["agency"],
                scheme=row["scheme"],
                amount=row["amount"],
                set_by=uow.actor,
                set_at=uow.now,
            )
            for row in rows
        )
    )
    return len(rows)


async def set_calendar(uow: UnitOfWork, entries: Sequence[tuple[date, Sequence[str], date]]) -> int:
    """Plan payment dates: each entry (pay date, its periods, the day they are prepared). A
    period whose cycle is open already takes the new pay date for the batches made from now on."""
    rows: list[dict[str, Any]] = [
        {"period": period, "pay_date": pay_date, "prepare_on": prepare_on}
        for pay_date, periods, prepare_on in entries
        for period in periods
    ]
    await repository.set_calendar(uow, rows)
    for row in rows:
        cycle = await cycle_row(uow, row["period"])
        if cycle is not None:
            await cycles_repository.set_cycle_pay_date(uow, cycle["id"], row["pay_date"])
    return len(rows)


async def periods_to_prepare(uow: UnitOfWork, today: date) -> list[str] | None:
    """The periods the calendar says to prepare by `today` (None: there is no calendar)."""
    if not await repository.has_calendar(uow):
        return None
    return await repository.periods_due(uow, today)


def _approval_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "period": row["period"],
        "agency": row["agency"],
        "decision": row["decision"],
        "digest": row["digest"],
        "count": row["count"],
        "amount": row["amount"],
        "totals": row["totals"],
        "reason": row["reason"],
        "decided_by": row["decided_by"],
        "decided_by_name": row["decided_by_name"],
        "prepared_by": row["prepared_by"],
        "decided_at": row["decided_at"],
    }


async def approval_trail(db: Any, period: str) -> list[dict[str, Any]]:
    return [_approval_view(row) for row in await repository.approvals(db, period)]


def _bucket(rows: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        slot = out.setdefault(row[key] or "NONE", {"count": 0, "amount": 0})
        slot["count"] += row["count"]
        slot["amount"] += row["amount"]
    return dict(sorted(out.items()))


async def overview(db: Any, cycle: dict[str, Any]) -> dict[str, Any]:
    """What a checker is shown before approving: the cycle's state and, per agency, its totals
    by scheme, channel and bank, the differences from the previous period, what is held, what
    awaits approval (with its digest and batches), the decisions so far and the envelope use."""
    cycle_id, period = int(cycle["id"]), cycle["period"]
    revalidated = await revalidation_done(db, period)
    totals = await reads.cycle_totals(db, cycle_id)
    holds = await reads.cycle_holds(db, cycle_id)
    differences = await reads.cycle_differences(db, cycle_id, period, add_months(period, -1))
    batches = await repository.awaiting_batches(db, cycle_id)
    trail = await approval_trail(db, period)
    agencies = sorted(
        {r["agency"] for r in totals}
        | {r["agency"] for r in holds}
        | {b["agency"] for b in batches}
        | {a["agency"] for a in trail}
    )
    parts: dict[str, Any] = {}
    for agency in agencies:
        mine = [r for r in totals if r["agency"] == agency]
        waiting = [b for b in batches if b["agency"] == agency]
        decisions = [a for a in trail if a["agency"] == agency]
        envelopes = await repository.envelopes_of(db, period, agency)
        approved = await repository.approved_by_scheme(db, period, agency)
        awaiting: dict[str, Any] | None = None
        if waiting:
            current = await awaiting_of(db, cycle_id, period, agency)
            awaiting = {
                "count": current.count,
                "amount": current.amount,
                "digest": current.digest,
                "by_scheme": {
                    k: {"count": t.count, "amount": t.amount} for k, t in current.by_scheme.items()
                },
                "prepared_by": sorted({b["prepared_by"] for b in waiting}),
                "batches": [
                    {
                        "batch_id": b["batch_id"],
                        "counterparty": b["counterparty"],
                        "control_count": b["control_count"],
                        "control_sum": b["control_sum"],
                        "execution_date": b["execution_date"],
                        "prepared_by": b["prepared_by"],
                    }
                    for b in waiting
                ],
            }
        state = rules.part_state(
            waiting=bool(waiting), decisions=[d["decision"] for d in decisions]
        )
        schemes = sorted(set(envelopes) | set(approved) | {r["scheme"] for r in mine})
        parts[agency] = {
            "state": state,
            "totals": {
                "count": sum(r["count"] for r in mine),
                "amount": sum(r["amount"] for r in mine),
                "by_scheme": _bucket(mine, "scheme"),
                "by_channel": _bucket(mine, "channel"),
                "by_bank": _bucket(mine, "counterparty"),
            },
            "differences": differences.get(agency, {}),
            "held": {
                h["reason"]: {"count": h["count"], "amount": h["amount"]}
                for h in holds
                if h["agency"] == agency
            },
            "awaiting_approval": awaiting,
            "approvals": decisions,
            "envelopes": {
                scheme: {
                    "envelope": envelopes.get(scheme),
                    "approved": approved.get(scheme, 0),
                    "remaining": envelopes[scheme] - approved.get(scheme, 0)
                    if scheme in envelopes
                    else None,
                }
                for scheme in schemes
            },
        }
    state = rules.cycle_state(
        creation_finished=cycle["creation_finished_at"] is not None,
        revalidated=revalidated,
        waiting=bool(batches),
        decided=bool(trail),
    )
    return {
        "approval_state": state,
        "prepared_by": cycle.get("prepared_by"),
        "pay_date": cycle.get("pay_date"),
        "revalidated": revalidated,
        "agencies": parts,
    }


async def cycles_queue(
    db: Any, *, awaiting_only: bool, before: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Cycles, the newest period first, each with its state and the state of every agency's part
    that has batches waiting, as `overview` decides them (a part sent back stays REJECTED until
    it is approved), and the parts awaiting approval; `awaiting_only`: only the cycles PREPARED
    (made whole, identities checked, something waiting for a decision). With them, the period to
    resume after (None: the list is complete)."""
    rows = await reads.list_cycles(db, waiting_only=awaiting_only, before=before, limit=limit)
    resume_after = rows[-1]["period"] if len(rows) == limit else None
    trails = await repository.decisions_by_period(db, [row["period"] for row in rows])
    out = []
    for row in rows:
        period = row["period"]
        trail = trails[period]
        parts = {
            agency: rules.part_state(
                waiting=True, decisions=[a["decision"] for a in trail if a["agency"] == agency]
            )
            for agency in row.pop("waiting_agencies")
        }
        state = rules.cycle_state(
            creation_finished=row["creation_finished_at"] is not None,
            revalidated=await revalidation_done(db, period),
            waiting=bool(parts),
            decided=bool(trail),
        )
        awaiting = sorted(a for a, s in parts.items() if s == "AWAITING_APPROVAL")
        if awaiting_only and state != "PREPARED":
            continue
        out.append({**row, "approval_state": state, "parts": parts, "awaiting_approval": awaiting})
    return out, resume_after
