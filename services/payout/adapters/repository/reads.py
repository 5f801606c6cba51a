"""Read statements: a cycle's progress, lists of installments, batches, anomalies and
reconciliations (a page after a cursor's key), the ledger, payment methods. They run on a
session, a connection or a unit of work, and write nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, text

from services.payout.adapters.orm import (
    batches,
    cycles,
    entitlements,
    installments,
    payment_anomalies,
    payment_attempts,
    payment_methods,
    reconciliation_lines,
    reconciliation_runs,
    verifications,
)
from services.payout.domain import model
from shared.clock import as_utc


class Reader(Protocol):
    """What the reads run on: an AsyncSession, an AsyncConnection or a UnitOfWork."""

    async def execute(self, statement: Any, parameters: Any = None, /) -> Any: ...


class Streamer(Reader, Protocol):
    """A reader that also streams a query's rows from a server-side cursor (an AsyncResult)."""

    async def stream(self, statement: Any, parameters: Any = None, /) -> Any: ...


def _cycle_of(period: str) -> Any:
    return select(cycles.c.id).where(cycles.c.period == period).scalar_subquery()


async def cycle_row(db: Reader, period: str) -> dict[str, Any] | None:
    row = (await db.execute(select(cycles).where(cycles.c.period == period))).mappings().first()
    return dict(row) if row else None


async def list_cycles(
    db: Reader, *, waiting_only: bool, before: str | None, limit: int
) -> list[dict[str, Any]]:
    """Cycles, the newest period first, each with the agencies that have batches waiting for a
    decision; `waiting_only`: only cycles made whole that have some."""
    waiting = select(batches.c.cycle_id).where(
        batches.c.cycle_id == cycles.c.id, batches.c.state == model.BATCH_PREPARED
    )
    query = (
        select(
            cycles.c.id,
            cycles.c.period,
            cycles.c.pay_date,
            cycles.c.prepared_by,
            cycles.c.started_at,
            cycles.c.creation_finished_at,
        )
        .order_by(cycles.c.period.desc())
        .limit(limit)
    )
    if waiting_only:
        query = query.where(cycles.c.creation_finished_at.is_not(None), waiting.exists())
    if before is not None:
        query = query.where(cycles.c.period < before)
    rows = [dict(r) for r in (await db.execute(query)).mappings()]
    agencies: dict[int, list[str]] = {}
    if rows:
        parts = await db.execute(
            select(batches.c.cycle_id, batches.c.agency)
            .where(
                batches.c.cycle_id.in_([r["id"] for r in rows]),
                batches.c.state == model.BATCH_PREPARED,
            )
            .distinct()
            .order_by(batches.c.agency)
        )
        for cycle_id, agency in parts.all():
            agencies.setdefault(cycle_id, []).append(agency)
    return [
        {**{k: v for k, v in r.items() if k != "id"}, "waiting_agencies": agencies.get(r["id"], [])}
        for r in rows
    ]


async def cycle_progress(db: Reader, cycle: dict[str, Any], now: datetime) -> dict[str, Any]:
    i = installments
    by_state: dict[str, dict[str, int]] = {}
    by_channel: dict[str, dict[str, dict[str, int]]] = {}
    total_count = total_sum = 0
    for state, counterparty, count, amount in (
        await db.execute(
            select(
                i.c.state, i.c.counterparty, func.count(), func.coalesce(func.sum(i.c.amount), 0)
            )
            .where(i.c.cycle_id == cycle["id"])
            .group_by(i.c.state, i.c.counterparty)
        )
    ).all():
        count, amount = int(count), int(amount)
        total_count += count
        total_sum += amount
        slot = by_state.setdefault(state, {"count": 0, "sum": 0})
        slot["count"] += count
        slot["sum"] += amount
        channel = by_channel.setdefault(counterparty or "NONE", {})
        channel[state] = {"count": count, "sum": amount}
    oldest_pending = (
        await db.execute(
            select(func.min(i.c.created_at)).where(
                i.c.cycle_id == cycle["id"],
                i.c.state.in_([model.ON_HOLD, model.SCHEDULED, model.SUBMITTED]),
            )
        )
    ).scalar()
    batch_states = {
        state: int(count)
        for state, count in (
            await db.execute(
                select(batches.c.state, func.count())
                .where(batches.c.cycle_id == cycle["id"])
                .group_by(batches.c.state)
            )
        ).all()
    }
    oldest = as_utc(oldest_pending)
    return {
        "period": cycle["period"],
        "cycle_id": cycle["id"],
        "state": cycle["state"],
        "started_at": as_utc(cycle["started_at"]),
        "installments": {"count": total_count, "sum": total_sum},
        "by_state": by_state,
        "by_counterparty": by_channel,
        "batches": batch_states,
        "oldest_pending_age_seconds": int((now - oldest).total_seconds()) if oldest else None,
        "creation_finished": cycle["creation_finished_at"] is not None,
        "complete": cycle["creation_finished_at"] is not None
        and not any(s in by_state for s in (model.ON_HOLD, model.SCHEDULED, model.SUBMITTED)),
    }


async def list_installments(
    db: Reader,
    *,
    period: str | None,
    state: str | None,
    counterparty: str | None,
    beneficiary_id: str | None,
    after: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    i, a = installments, payment_attempts
    query = (
        select(i, a.c.account_number, a.c.batch_id)
        .select_from(
            i.outerjoin(a, (a.c.installment_id == i.c.id) & (a.c.attempt_no == i.c.attempt_no))
        )
        .order_by(i.c.id)
        .limit(limit)
    )
    if period:
        query = query.where(i.c.cycle_id == _cycle_of(period), i.c.period == period)
    if state:
        query = query.where(i.c.state == state)
    if counterparty:
        query = query.where(i.c.counterparty == counterparty)
    if beneficiary_id:
        query = query.where(i.c.beneficiary_id == beneficiary_id)
    if after is not None:
        query = query.where(i.c.id > after)
    return [dict(row) for row in (await db.execute(query)).mappings()]


async def installment_detail(db: Reader, installment_id: int) -> dict[str, Any] | None:
    row = (
        (await db.execute(select(installments).where(installments.c.id == installment_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    attempts = [
        dict(a)
        for a in (
            await db.execute(
                select(payment_attempts)
                .where(payment_attempts.c.installment_id == installment_id)
                .order_by(payment_attempts.c.attempt_no)
            )
        ).mappings()
    ]
    anomalies = [
        dict(a)
        for a in (
            await db.execute(
                select(payment_anomalies)
                .where(payment_anomalies.c.installment_id == installment_id)
                .order_by(payment_anomalies.c.id)
            )
        ).mappings()
    ]
    return {**dict(row), "attempts": attempts, "anomalies": anomalies}


async def list_anomalies(
    db: Reader,
    *,
    kind: str | None,
    period: str | None,
    beneficiary_id: str | None,
    installment_id: int | None,
    counterparty: str | None,
    after: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Anomalies oldest first, with the installment each concerns (its person, scheme, period
    and state) when there is one."""
    a, i = payment_anomalies, installments
    query = (
        select(
            a,
            i.c.beneficiary_id,
            i.c.entitlement_id,
            i.c.scheme,
            i.c.period,
            i.c.state.label("installment_state"),
            i.c.hold_reason,
        )
        .select_from(a.outerjoin(i, i.c.id == a.c.installment_id))
        .order_by(a.c.id)
        .limit(limit)
    )
    if kind:
        query = query.where(a.c.kind == kind)
    if counterparty:
        query = query.where(a.c.counterparty == counterparty)
    if installment_id is not None:
        query = query.where(a.c.installment_id == installment_id)
    if beneficiary_id:
        query = query.where(i.c.beneficiary_id == beneficiary_id)
    if period:
        query = query.where(i.c.period == period)
    if after is not None:
        query = query.where(a.c.id > after)
    return [dict(row) for row in (await db.execute(query)).mappings()]


async def anomaly_counts(db: Reader) -> dict[str, int]:
    """How many anomalies payout has recorded, by kind."""
    rows = await db.execute(
        select(payment_anomalies.c.kind, func.count()).group_by(payment_anomalies.c.kind)
    )
    return {kind: int(count) for kind, count in rows.all()}


async def list_batches(
    db: Reader,
    *,
    period: str | None,
    state: str | None,
    counterparty: str | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(batches).order_by(batches.c.batch_id).limit(limit)
    if period:
        query = query.where(batches.c.period == period)
    if state:
        query = query.where(batches.c.state == state)
    if counterparty:
        query = query.where(batches.c.counterparty == counterparty)
    if after is not None:
        query = query.where(batches.c.batch_id > after)
    return [dict(row) for row in (await db.execute(query)).mappings()]


async def batch_row(db: Reader, batch_id: str) -> dict[str, Any] | None:
    row = (
        (await db.execute(select(batches).where(batches.c.batch_id == batch_id))).mappings().first()
    )
    if row is None:
        return None
    states = {
        state: int(count)
        for state, count in (
            await db.execute(
                select(payment_attempts.c.state, func.count())
                .where(payment_attempts.c.batch_id == batch_id)
                .group_by(payment_attempts.c.state)
            )
        ).all()
    }
    return {**dict(row), "items_by_state": states}


async def ledger(db: Reader, period: str) -> list[dict[str, Any]]:
    """Per counterparty: what settled (banks) or was paid in cash, what came back, what failed
    and what is still open, for the period's current attempts."""
    i = installments
    rows = (
        await db.execute(
            select(
                i.c.counterparty, i.c.state, func.count(), func.coalesce(func.sum(i.c.amount), 0)
            )
            .where(i.c.cycle_id == _cycle_of(period), i.c.counterparty.is_not(None))
            .group_by(i.c.counterparty, i.c.state)
        )
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for counterparty, state, count, amount in rows:
        entry = out.setdefault(
            counterparty,
            {
                "counterparty": counterparty,
                "settled_count": 0,
                "settled_sum": 0,
                "returned_count": 0,
                "returned_sum": 0,
                "failed_count": 0,
                "failed_sum": 0,
                "open_count": 0,
                "open_sum": 0,
                "cancelled_count": 0,
            },
        )
        count, amount = int(count), int(amount)
        if state in (model.SETTLED, model.PAID_CASH):
            entry["settled_count"] += count
            entry["settled_sum"] += amount
        elif state == model.RETURNED:
            entry["returned_count"] += count
            entry["returned_sum"] += amount
        elif state == model.FAILED:
            entry["failed_count"] += count
            entry["failed_sum"] += amount
        elif state == model.CANCELLED:
            entry["cancelled_count"] += count
        else:
            entry["open_count"] += count
            entry["open_sum"] += amount
    return [out[k] for k in sorted(out)]


async def reconciliation(db: Reader, run_id: int) -> dict[str, Any] | None:
    row = (
        (await db.execute(select(reconciliation_runs).where(reconciliation_runs.c.id == run_id)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def reconciliation_line_rows(
    db: Reader, run_id: int, kind: str | None, after: int | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(reconciliation_lines)
        .where(reconciliation_lines.c.run_id == run_id)
        .order_by(reconciliation_lines.c.id)
        .limit(limit)
    )
    if kind:
        query = query.where(reconciliation_lines.c.kind == kind)
    if after is not None:
        query = query.where(reconciliation_lines.c.id > after)
    return [dict(row) for row in (await db.execute(query)).mappings()]


async def latest_reconciliations(
    db: Reader, counterparty: str | None, day: Any, limit: int
) -> list[dict[str, Any]]:
    query = select(reconciliation_runs).order_by(reconciliation_runs.c.id.desc()).limit(limit)
    if counterparty:
        query = query.where(reconciliation_runs.c.counterparty == counterparty)
    if day is not None:
        query = query.where(reconciliation_runs.c.statement_date == day)
    return [dict(row) for row in (await db.execute(query)).mappings()]


async def payment_method(db: Reader, beneficiary_id: str) -> dict[str, Any] | None:
    row = (
        (
            await db.execute(
                select(payment_methods).where(payment_methods.c.beneficiary_id == beneficiary_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    latest = (
        (
            await db.execute(
                select(verifications).where(verifications.c.method_id == row["method_id"])
            )
        )
        .mappings()
        .first()
    )
    return {**dict(row), "verification": dict(latest) if latest else None}


async def world_status(db: Reader) -> dict[str, Any]:
    """What payout knows of intake's world: entitlements and account verifications by state."""
    entitlement_count = (
        await db.execute(select(func.count()).select_from(entitlements))
    ).scalar_one()
    by_state = dict(
        (
            await db.execute(
                select(verifications.c.state, func.count()).group_by(verifications.c.state)
            )
        ).all()
    )
    return {
        "entitlements": int(entitlement_count),
        "verifications": {state: int(count) for state, count in by_state.items()},
    }


# -- a cycle's overview for approval: totals, differences, holds ----------------------------------


async def cycle_totals(db: Reader, cycle_id: int) -> list[dict[str, Any]]:
    """Per agency, scheme, channel and counterparty: the count and sum of the cycle's
    installments that pay (neither on hold nor cancelled)."""
    i = installments
    rows = await db.execute(
        select(
            i.c.agency,
            i.c.scheme,
            i.c.channel,
            i.c.counterparty,
            func.count(),
            func.sum(i.c.amount),
        )
        .where(i.c.cycle_id == cycle_id, i.c.state.not_in([model.ON_HOLD, model.CANCELLED]))
        .group_by(i.c.agency, i.c.scheme, i.c.channel, i.c.counterparty)
    )
    return [
        {
            "agency": agency,
            "scheme": scheme,
            "channel": channel,
            "counterparty": counterparty,
            "count": int(count),
            "amount": int(amount or 0),
        }
        for agency, scheme, channel, counterparty, count, amount in rows.all()
    ]


async def cycle_holds(db: Reader, cycle_id: int) -> list[dict[str, Any]]:
    """Per agency and reason: the cycle's installments on hold."""
    i = installments
    rows = await db.execute(
        select(i.c.agency, i.c.hold_reason, func.count(), func.sum(i.c.amount))
        .where(i.c.cycle_id == cycle_id, i.c.state == model.ON_HOLD)
        .group_by(i.c.agency, i.c.hold_reason)
    )
    return [
        {"agency": a, "reason": r or "UNKNOWN", "count": int(c), "amount": int(s or 0)}
        for a, r, c, s in rows.all()
    ]


_DIFFERENCES = """
    SELECT c.agency,
           SUM(CASE WHEN p.id IS NULL THEN 1 ELSE 0 END) AS new_count,
           SUM(CASE WHEN p.id IS NULL THEN c.amount ELSE 0 END) AS new_amount,
           SUM(CASE WHEN p.id IS NOT NULL AND p.amount <> c.amount THEN 1 ELSE 0 END) AS amount_count,
           SUM(CASE WHEN p.id IS NOT NULL AND p.amount <> c.amount THEN c.amount - p.amount ELSE 0 END)
               AS amount_delta,
           SUM(CASE WHEN p.id IS NOT NULL AND c.method_id IS NOT NULL AND p.method_id IS NOT NULL
                     AND c.method_id <> p.method_id THEN 1 ELSE 0 END) AS account_count,
           SUM(CASE WHEN p.id IS NOT NULL AND c.method_id IS NOT NULL AND p.method_id IS NOT NULL
                     AND c.method_id <> p.method_id THEN c.amount ELSE 0 END) AS account_amount
    FROM installments c
    LEFT JOIN installments p
           ON p.entitlement_id = c.entitlement_id AND p.period = :previous
          AND p.state NOT IN ('CANCELLED', 'ON_HOLD')
    WHERE c.cycle_id = :cycle_id AND c.state NOT IN ('CANCELLED', 'ON_HOLD')
    GROUP BY c.agency
"""

_STOPPED = """
    SELECT p.agency, COUNT(*), COALESCE(SUM(p.amount), 0)
    FROM installments p
    LEFT JOIN installments c
           ON c.entitlement_id = p.entitlement_id AND c.period = :period AND c.cycle_id = :cycle_id
          AND c.state NOT IN ('CANCELLED', 'ON_HOLD')
    WHERE p.period = :previous AND p.state NOT IN ('CANCELLED', 'ON_HOLD') AND c.id IS NULL
    GROUP BY p.agency
"""

# The statements that compare a cycle with the previous period, by name (their plans are tested).
COMPARED_WITH_PREVIOUS = {"differences": _DIFFERENCES, "stopped": _STOPPED}


async def cycle_differences(
    db: Reader, cycle_id: int, period: str, previous: str
) -> dict[str, dict[str, dict[str, int]]]:
    """Per agency, against the period `previous`: new payments, stopped ones (paid then, not
    now), changed amounts (the amount is the change) and changed accounts, counts and sums."""
    out: dict[str, dict[str, dict[str, int]]] = {}

    def slot(agency: str) -> dict[str, dict[str, int]]:
        return out.setdefault(
            agency,
            {
                k: {"count": 0, "amount": 0}
                for k in ("new", "stopped", "changed_amount", "changed_account")
            },
        )

    # The cycle's own period too: its counterpart is found by the unique key (entitlement, period).
    params = {"cycle_id": cycle_id, "period": period, "previous": previous}
    for row in (await db.execute(text(_DIFFERENCES), params)).all():
        s = slot(row[0])
        s["new"] = {"count": int(row[1] or 0), "amount": int(row[2] or 0)}
        s["changed_amount"] = {"count": int(row[3] or 0), "amount": int(row[4] or 0)}
        s["changed_account"] = {"count": int(row[5] or 0), "amount": int(row[6] or 0)}
    for agency, count, amount in (await db.execute(text(_STOPPED), params)).all():
        slot(agency)["stopped"] = {"count": int(count), "amount": int(amount)}
    return out
