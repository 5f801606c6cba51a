"""Outcomes of payments (callbacks, status inquiries, refusals at intake) applied in bulk: one
transaction for a whole delivery, a final state never goes back, a replayed event id changes
nothing, and every state change writes its event through the outbox in the same transaction.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.adapters.bulk import update_by_key
from services.payout.adapters.orm import (
    beneficiaries,
    callback_events,
    installments,
    payment_anomalies,
    payment_attempts,
    payment_methods,
)
from services.payout.adapters.outbox_writer import add_many, json_time
from services.payout.domain import model
from services.payout.domain.model import Outcome, PaymentView, decide
from services.payout.domain.periods import next_period, vn_date
from services.payout.service_layer.common import facts, facts_json, is_sqlite_session, upsert
from services.payout.service_layer.cycles import stop_entitlements
from shared.events.contracts import (
    AccountFlagged,
    Contract,
    InstallmentScheduled,
    PaymentFailed,
    PaymentPaidInCash,
    PaymentReturned,
    PaymentSettled,
)
from shared.outbox import Outbox


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    text: str
    permanent: bool


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    """`describe(code)` gives a reason's text and whether it is permanent (the channel's
    table); `fallback` is what a permanent bank failure does to the period: none or cash."""

    describe: Callable[[str | None], Any]
    fallback: str = "none"


@dataclass
class Applied:
    received: int = 0
    replayed: int = 0
    applied: int = 0
    ignored: int = 0
    anomalies: int = 0
    pending: int = 0
    unreadable: int = 0
    by_state: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "replayed": self.replayed,
            "applied": self.applied,
            "ignored": self.ignored,
            "flagged": self.anomalies,
            "pending": self.pending,
            "unreadable": self.unreadable,
        }


async def record_callback(
    session: AsyncSession,
    outbox: Outbox,
    counterparty: str,
    delivery_id: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    policy: OutcomePolicy,
) -> Applied:
    """Keep each event id once per counterparty and apply only the new ones. Event ids are
    inserted in sorted order, then installments are locked in id order: two deliveries of
    the same events queue behind each other instead of deadlocking."""
    first: dict[str, Outcome] = {}
    for outcome in outcomes:
        assert outcome.event_id is not None
        first.setdefault(outcome.event_id, outcome)
    rows = [
        {
            "counterparty": counterparty,
            "event_id": event_id,
            "delivery_id": delivery_id,
            "end_to_end_id": outcome.end_to_end_id[:64],
            "status": outcome.status,
            "amount": outcome.amount if outcome.amount is not None else 0,
            "occurred_at": outcome.occurred_at,
            "received_at": now,
        }
        for event_id, outcome in sorted(first.items())
    ]
    fresh: set[str] = set()
    if rows:
        # One cached statement sent for many parameter sets (a multi-row VALUES would be
        # compiled anew for every delivery size).
        fresh = set(
            (
                await session.execute(
                    upsert(session, callback_events)
                    .on_conflict_do_nothing(index_elements=["counterparty", "event_id"])
                    .returning(callback_events.c.event_id),
                    rows,
                )
            ).scalars()
        )
    todo = [o for o in outcomes if o.event_id in fresh and first[o.event_id] is o]
    result = await apply_outcomes(session, outbox, counterparty, todo, now, policy)
    result.received = len(outcomes)
    result.replayed = len(outcomes) - len(todo)
    return result


_INSTALLMENT_UPDATE_COLUMNS = (
    "state", "reason_code", "reason_text", "bank_reference", "settled_at", "paid_on", "staff_id",
    "channel", "counterparty", "attempt_no",
)


async def apply_outcomes(
    session: AsyncSession,
    outbox: Outbox,
    counterparty: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    policy: OutcomePolicy,
) -> Applied:
    result = Applied(received=len(outcomes))
    if not outcomes:
        return result
    outcomes = await _each_of_rejected_files(session, counterparty, outcomes)
    a = payment_attempts
    query = (
        select(
            installments,
            a.c.id.label("a_id"),
            a.c.attempt_no.label("a_no"),
            a.c.end_to_end_id.label("a_e2e"),
            a.c.counterparty.label("a_counterparty"),
            a.c.channel.label("a_channel"),
        )
        .select_from(installments.join(a, a.c.installment_id == installments.c.id))
        .where(a.c.end_to_end_id.in_(sorted({o.end_to_end_id for o in outcomes})))
        .order_by(installments.c.id)
    )
    if not is_sqlite_session(session):
        query = query.with_for_update(of=installments)
    found = (await session.execute(query)).mappings().all()
    by_e2e = {row["a_e2e"]: row for row in found}
    current: dict[int, dict[str, Any]] = {}
    for row in found:
        current.setdefault(row["id"], {k: row[k] for k in installments.c.keys()})  # noqa: SIM118

    changed: set[int] = set()
    attempt_updates: dict[int, dict[str, Any]] = {}
    events: list[Contract] = []
    settled_events: list[dict[str, Any]] = []
    cash_events: list[dict[str, Any]] = []
    anomalies: list[dict[str, Any]] = []
    flags: list[tuple[str, str | None, str]] = []
    deceased: list[tuple[str, str]] = []
    fallbacks: list[dict[str, Any]] = []

    for outcome in outcomes:
        row = by_e2e.get(outcome.end_to_end_id)
        if outcome.status == model.UNREADABLE:
            # Reported with why, for a person to read the bank's entry; it moves no money.
            result.unreadable += 1
            kind = f"UNREADABLE_{outcome.reason_code or 'ENTRY'}"[:40]
            anomalies.append(_anomaly(kind, counterparty, outcome, row["id"] if row else None,
                                      int(current[row["id"]]["amount"]) if row else None, now))
            continue
        if row is None:
            anomalies.append(_anomaly("UNKNOWN_PAYMENT", counterparty, outcome, None, None, now))
            continue
        inst = current[row["id"]]
        if outcome.status in (model.SETTLED, model.PAID_CASH) and outcome.amount is None:
            # Money moved by an unknown amount (a status answer without one): never settled so.
            anomalies.append(_anomaly("AMOUNT_MISSING", counterparty, outcome, inst["id"], inst["amount"], now))
            continue
        outcome = _fitted(outcome)
        view = PaymentView(
            installment_state=inst["state"],
            installment_amount=int(inst["amount"]),
            current_attempt_no=int(inst["attempt_no"]),
            attempt_no=int(row["a_no"]),
            attempt_counterparty=row["a_counterparty"],
        )
        decision = decide(view, outcome, counterparty)
        if decision.verdict == "IGNORE":
            result.ignored += 1
            continue
        if decision.verdict == "PENDING":
            # The bank holds it as a pending entry: kept with the delivery, the payment stays
            # submitted (visibly pending with its age) until a booked entry settles it.
            result.pending += 1
            continue
        if decision.verdict == "ANOMALY":
            anomalies.append(
                _anomaly(decision.anomaly or "ANOMALY", counterparty, outcome, inst["id"], inst["amount"], now)
            )
            continue
        result.applied += 1
        if decision.anomaly:
            anomalies.append(_anomaly(decision.anomaly, counterparty, outcome, inst["id"], inst["amount"], now))
        if outcome.status == model.REVERSED and outcome.reason_code is None:
            outcome = replace(outcome, reason_code=model.REASON_REVERSED)
        new_state = decision.new_state
        assert new_state is not None
        result.by_state[new_state] = result.by_state.get(new_state, 0) + 1
        changed.add(inst["id"])
        attempt_facts = facts(inst, channel=row["a_channel"], counterparty=row["a_counterparty"])
        attempt_update = {
            "state": new_state,
            "reason_code": outcome.reason_code,
            "bank_reference": outcome.bank_reference,
            "finished_at": now,
        }
        if new_state == model.SETTLED:
            inst.update(state=model.SETTLED, bank_reference=outcome.bank_reference,
                        settled_at=outcome.occurred_at, reason_code=None, reason_text=None)
            settled_events.append({
                **facts_json(inst, channel=row["a_channel"], counterparty=row["a_counterparty"]),
                "end_to_end_id": outcome.end_to_end_id, "bank_reference": outcome.bank_reference,
                "settled_at": json_time(outcome.occurred_at)})
        elif new_state == model.PAID_CASH:
            paid_on = outcome.paid_on or vn_date(outcome.occurred_at)
            inst.update(state=model.PAID_CASH, bank_reference=outcome.bank_reference,
                        settled_at=outcome.occurred_at, paid_on=paid_on, staff_id=outcome.staff_id,
                        reason_code=None, reason_text=None)
            cash_events.append({
                **facts_json(inst, channel=row["a_channel"], counterparty=row["a_counterparty"]),
                "paid_on": paid_on.isoformat(), "staff_id": outcome.staff_id or "",
                "paid_at": json_time(outcome.occurred_at)})
        elif new_state == model.RETURNED:
            code = outcome.reason_code or "UNSPECIFIED"
            reason = policy.describe(outcome.reason_code)
            inst.update(state=model.RETURNED, reason_code=code, reason_text=fit(reason.text, _REASON_TEXT))
            events.append(PaymentReturned(**attempt_facts, reason_code=code, returned_at=outcome.occurred_at))
            if code in model.DECEASED_REASONS and row["a_channel"] != model.AUTHORISED_ACCOUNT:
                deceased.append((inst["beneficiary_id"], inst["period"]))
        else:  # FAILED
            code = outcome.reason_code or "UNSPECIFIED"
            reason = policy.describe(outcome.reason_code)
            reason = ReasonInfo(fit(reason.text, _REASON_TEXT) or "", bool(reason.permanent))
            permanent = reason.permanent
            events.append(PaymentFailed(**attempt_facts, reason_code=code, reason_text=reason.text,
                                        permanent=permanent, failed_at=outcome.occurred_at))
            if permanent and code in model.ACCOUNT_REASONS:
                flags.append((inst["beneficiary_id"], inst["method_id"], code))
                events.append(AccountFlagged(
                    beneficiary_id=inst["beneficiary_id"], method_id=inst["method_id"],
                    installment_id=str(inst["id"]), reason_code=code, reason_text=reason.text,
                    flagged_at=now))
            # The holder of the beneficiary's own account died: the beneficiary did.
            holder_deceased = code in model.DECEASED_REASONS and row["a_channel"] == model.OWN_ACCOUNT
            if holder_deceased:
                deceased.append((inst["beneficiary_id"], inst["period"]))
            if (
                permanent
                and policy.fallback == "cash"
                and model.is_verdict(outcome)
                and not holder_deceased
                and row["a_counterparty"] != model.VNPOST
                and int(row["a_no"]) == 1
            ):
                inst.update(state=model.SCHEDULED, channel=model.CASH_POST_OFFICE,
                            counterparty=model.VNPOST, attempt_no=2, reason_code=code, reason_text=reason.text)
                fallbacks.append(inst)
                events.append(InstallmentScheduled(**facts(inst), scheduled_at=now))
            else:
                inst.update(state=model.FAILED, reason_code=code, reason_text=reason.text)
            attempt_update["reason_code"] = code
        attempt_updates[int(row["a_id"])] = attempt_update

    if changed:
        await update_by_key(
            session, installments, "id", (*_INSTALLMENT_UPDATE_COLUMNS, "updated_at"),
            [{**current[iid], "updated_at": now} for iid in sorted(changed)],
        )
    if attempt_updates:
        await update_by_key(
            session, payment_attempts, "id", ("state", "reason_code", "bank_reference", "finished_at"),
            [{"id": aid, **values} for aid, values in sorted(attempt_updates.items())],
        )
    if fallbacks:
        await _create_cash_attempts(session, fallbacks, now)
    for beneficiary_id, method_id, code in flags:
        condition = payment_methods.c.beneficiary_id == beneficiary_id
        if method_id is not None:
            condition = condition & (payment_methods.c.method_id == method_id)
        await session.execute(
            update(payment_methods)
            .where(condition, payment_methods.c.status == model.METHOD_VERIFIED)
            .values(status=model.METHOD_FLAGGED, status_reason=code, updated_at=now)
        )
    if anomalies:
        result.anomalies = len(anomalies)
        await session.execute(insert(payment_anomalies), anomalies)
    # Settlements first: an installment settled then returned in one delivery keeps that order.
    await add_many(session, outbox, PaymentSettled, settled_events)
    await add_many(session, outbox, PaymentPaidInCash, cash_events)
    if events:
        await outbox.add(session, events)
    for beneficiary_id, period in sorted(set(deceased)):
        await stop_entitlements(
            session, outbox, beneficiary_id=beneficiary_id, from_period=next_period(period),
            reason="HOLDER_DECEASED", now=now,
        )
    return result


async def _each_of_rejected_files(
    session: AsyncSession, counterparty: str, outcomes: Sequence[Outcome]
) -> list[Outcome]:
    """A file the bank refused as a whole fails every payment we put in it, with its reason."""
    files = [o for o in outcomes if o.status == model.FILE_REJECTED]
    if not files:
        return list(outcomes)
    members = (
        await session.execute(
            select(payment_attempts.c.batch_id, payment_attempts.c.end_to_end_id)
            .where(payment_attempts.c.batch_id.in_({o.end_to_end_id for o in files}),
                   payment_attempts.c.counterparty == counterparty)
            .order_by(payment_attempts.c.end_to_end_id)
        )
    ).all()
    by_file: dict[str, list[str]] = {}
    for batch_id, e2e in members:
        by_file.setdefault(batch_id, []).append(e2e)
    expanded: list[Outcome] = []
    for outcome in outcomes:
        if outcome.status != model.FILE_REJECTED:
            expanded.append(outcome)
            continue
        if outcome.end_to_end_id not in by_file:
            expanded.append(outcome)  # no file of ours: reported as an unknown payment
            continue
        expanded.extend(
            replace(outcome, end_to_end_id=e2e, status="FAILED", amount=None,
                    reason_code=outcome.reason_code or "FF01")
            for e2e in by_file[outcome.end_to_end_id]
        )
    return expanded


async def _create_cash_attempts(session: AsyncSession, rows: list[dict[str, Any]], now: datetime) -> None:
    people = {
        r["beneficiary_id"]: r
        for r in (
            await session.execute(
                select(beneficiaries.c.beneficiary_id, beneficiaries.c.full_name, beneficiaries.c.commune_code)
                .where(beneficiaries.c.beneficiary_id.in_({row["beneficiary_id"] for row in rows}))
            )
        ).mappings()
    }
    values = []
    for row in rows:
        person = people.get(row["beneficiary_id"])
        values.append(
            {
                "installment_id": row["id"],
                "attempt_no": 2,
                "end_to_end_id": model.end_to_end_id(row["id"], 2),
                "cycle_id": row["cycle_id"],
                "channel": model.CASH_POST_OFFICE,
                "counterparty": model.VNPOST,
                "amount": row["amount"],
                "account_number": None,
                "account_name": person["full_name"] if person else "",
                "commune_code": person["commune_code"] if person else row["commune_code"],
                "remittance_info": f"{row['agency']} {row['scheme']} {row['period']}",
                "state": model.CREATED,
                "created_at": now,
            }
        )
    await session.execute(
        upsert(session, payment_attempts)
        .values(values)
        .on_conflict_do_nothing(index_elements=["installment_id", "attempt_no"])
    )


_REASON_TEXT = installments.c.reason_text
_FITTED_COLUMNS = {
    "reason_code": installments.c.reason_code,
    "bank_reference": installments.c.bank_reference,
    "staff_id": installments.c.staff_id,
}


def fit(value: str | None, column: Any) -> str | None:
    """Text a counterparty chose, cut to its column's width in characters (what VARCHAR
    counts, so never inside a UTF-8 sequence), without NULs: a long reason never wedges the
    transaction that records it."""
    if value is None:
        return None
    return value.replace("\x00", "")[: column.type.length]


def _fitted(outcome: Outcome) -> Outcome:
    changes = {
        name: fit(getattr(outcome, name), column)
        for name, column in _FITTED_COLUMNS.items()
        if getattr(outcome, name) is not None and getattr(outcome, name) != fit(getattr(outcome, name), column)
    }
    return replace(outcome, **changes) if changes else outcome


def _anomaly(
    kind: str, counterparty: str, outcome: Outcome, installment_id: int | None,
    expected: int | None, now: datetime,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "counterparty": counterparty,
        "end_to_end_id": outcome.end_to_end_id[:64],
        "installment_id": installment_id,
        "event_id": outcome.event_id,
        "reported_status": outcome.status,
        "expected_amount": expected,
        "reported_amount": outcome.amount,
        "created_at": now,
    }
