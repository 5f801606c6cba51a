"""What a delivery of outcomes (callbacks, status answers, refusals at intake) does to the
payments it names: which rows change, which anomalies are kept for a person, which events go
out. Pure: `decide` is given the current rows and returns the changes and the events; the
service layer reads the rows and writes what it returns in one transaction.

A final state never goes back (the per-payment verdict is `model.decide`); a permanent refusal
of the first bank attempt may send the period to the post office in cash, when the policy says
so and the bank's word is a verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from services.payout.domain import model
from services.payout.domain.facts import facts, facts_json
from services.payout.domain.model import Outcome, PaymentView
from shared.events.contracts import (
    AccountFlagged,
    Contract,
    InstallmentScheduled,
    PaymentFailed,
    PaymentReturned,
)
from shared.outbox import json_time
from shared.periods import vietnam_date

# The installment columns an outcome may change (with `updated_at`).
INSTALLMENT_CHANGES = (
    "state",
    "reason_code",
    "reason_text",
    "bank_reference",
    "settled_at",
    "paid_on",
    "staff_id",
    "channel",
    "counterparty",
    "attempt_no",
)
ATTEMPT_CHANGES = ("state", "reason_code", "bank_reference", "finished_at")


class Reason(Protocol):
    """A channel's reason for a code (adapters.banks.base.Reason)."""

    @property
    def text(self) -> str: ...

    @property
    def permanent(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    """`describe(code)` gives a reason's text and whether it is permanent (the channel's
    table); `fallback` is what a permanent bank failure does to the period: none or cash."""

    describe: Callable[[str | None], Reason]
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


@dataclass
class Changes:
    """The row changes of a delivery, for the repository to write."""

    installments: list[dict[str, Any]] = field(default_factory=list)  # whole rows, in id order
    attempts: list[dict[str, Any]] = field(
        default_factory=list
    )  # id and ATTEMPT_CHANGES, in id order
    to_post_office: list[dict[str, Any]] = field(
        default_factory=list
    )  # installments needing a cash attempt
    flagged_methods: list[tuple[str, str | None, str]] = field(
        default_factory=list
    )  # beneficiary, method, code
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    holders_deceased: list[tuple[str, str]] = field(
        default_factory=list
    )  # beneficiary, period; sorted
    applied: Applied = field(default_factory=Applied)


@dataclass
class Events:
    """The events of a delivery: settlements first (an installment settled then returned in
    one delivery keeps that order), as JSON-ready dicts for the bulk path, then the others."""

    settled: list[dict[str, Any]] = field(default_factory=list)  # PaymentSettled
    paid_in_cash: list[dict[str, Any]] = field(default_factory=list)  # PaymentPaidInCash
    others: list[Contract] = field(default_factory=list)


# One row per attempt an outcome names: the installment's columns and the attempt's
# `a_id`, `a_no`, `a_e2e`, `a_counterparty`, `a_channel` (the repository's `payments_named`).
PaymentRow = Mapping[str, Any]


def decide(
    rows: Sequence[PaymentRow],
    outcomes: Sequence[Outcome],
    counterparty: str,
    policy: OutcomePolicy,
    now: datetime,
) -> tuple[Changes, Events]:
    """What `outcomes`, reported by `counterparty`, do to the payments of `rows`, in order (a
    later outcome sees what an earlier one of the delivery did)."""
    changes, events = Changes(applied=Applied(received=len(outcomes))), Events()
    by_e2e = {row["a_e2e"]: row for row in rows}
    current: dict[int, dict[str, Any]] = {}
    for named in rows:
        current.setdefault(named["id"], {k: v for k, v in named.items() if not k.startswith("a_")})
    changed: set[int] = set()
    attempts: dict[int, dict[str, Any]] = {}
    deceased: set[tuple[str, str]] = set()
    result = changes.applied

    for reported in outcomes:
        outcome = reported
        row: PaymentRow | None = by_e2e.get(outcome.end_to_end_id)
        if outcome.status == model.UNREADABLE:
            # Reported with why, for a person to read the bank's entry; it moves no money.
            result.unreadable += 1
            kind = f"{model.ANOMALY_UNREADABLE_PREFIX}{outcome.reason_code or 'ENTRY'}"[:40]
            changes.anomalies.append(
                anomaly(
                    kind,
                    counterparty,
                    outcome,
                    row["id"] if row else None,
                    int(current[row["id"]]["amount"]) if row else None,
                    now,
                )
            )
            continue
        if row is None:
            changes.anomalies.append(
                anomaly("UNKNOWN_PAYMENT", counterparty, outcome, None, None, now)
            )
            continue
        inst = current[row["id"]]
        if outcome.status in (model.SETTLED, model.PAID_CASH) and outcome.amount is None:
            # Money moved by an unknown amount (a status answer without one): never settled so.
            changes.anomalies.append(
                anomaly("AMOUNT_MISSING", counterparty, outcome, inst["id"], inst["amount"], now)
            )
            continue
        outcome = fitted(outcome)
        view = PaymentView(
            installment_state=inst["state"],
            installment_amount=int(inst["amount"]),
            current_attempt_no=int(inst["attempt_no"]),
            attempt_no=int(row["a_no"]),
            attempt_counterparty=row["a_counterparty"],
        )
        decision = model.decide(view, outcome, counterparty)
        if decision.verdict == "IGNORE":
            result.ignored += 1
            continue
        if decision.verdict == "PENDING":
            # The bank holds it as a pending entry: kept with the delivery, the payment stays
            # submitted (visibly pending with its age) until a booked entry settles it.
            result.pending += 1
            continue
        if decision.verdict == "ANOMALY":
            changes.anomalies.append(
                anomaly(
                    decision.anomaly or "ANOMALY",
                    counterparty,
                    outcome,
                    inst["id"],
                    inst["amount"],
                    now,
                )
            )
            continue
        result.applied += 1
        if decision.anomaly:
            changes.anomalies.append(
                anomaly(decision.anomaly, counterparty, outcome, inst["id"], inst["amount"], now)
            )
        if outcome.status == model.REVERSED and outcome.reason_code is None:
            outcome = replace(outcome, reason_code=model.REASON_REVERSED)
        new_state = decision.new_state
        assert new_state is not None
        result.by_state[new_state] = result.by_state.get(new_state, 0) + 1
        changed.add(inst["id"])
        attempt = {
            "state": new_state,
            "reason_code": outcome.reason_code,
            "bank_reference": outcome.bank_reference,
            "finished_at": now,
        }
        if new_state == model.SETTLED:
            _settle(inst, row, outcome, events)
        elif new_state == model.PAID_CASH:
            _pay_in_cash(inst, row, outcome, events)
        elif new_state == model.RETURNED:
            if _return(inst, row, outcome, policy, events):
                deceased.add((inst["beneficiary_id"], inst["period"]))
        else:
            attempt["reason_code"], holder_deceased = _fail(
                inst, row, outcome, policy, now, changes, events
            )
            if holder_deceased:
                deceased.add((inst["beneficiary_id"], inst["period"]))
        attempts[int(row["a_id"])] = attempt

    changes.installments = [{**current[iid], "updated_at": now} for iid in sorted(changed)]
    changes.attempts = [{"id": aid, **values} for aid, values in sorted(attempts.items())]
    changes.holders_deceased = sorted(deceased)
    result.anomalies = len(changes.anomalies)
    return changes, events


def _settle(inst: dict[str, Any], row: PaymentRow, outcome: Outcome, events: Events) -> None:
    inst.update(
        state=model.SETTLED,
        bank_reference=outcome.bank_reference,
        settled_at=outcome.occurred_at,
        reason_code=None,
        reason_text=None,
    )
    events.settled.append(
        {
            **facts_json(inst, channel=row["a_channel"], counterparty=row["a_counterparty"]),
            "end_to_end_id": outcome.end_to_end_id,
            "bank_reference": outcome.bank_reference,
            "settled_at": json_time(outcome.occurred_at),
        }
    )


def _pay_in_cash(inst: dict[str, Any], row: PaymentRow, outcome: Outcome, events: Events) -> None:
    paid_on = outcome.paid_on or vietnam_date(outcome.occurred_at)
    inst.update(
        state=model.PAID_CASH,
        bank_reference=outcome.bank_reference,
        settled_at=outcome.occurred_at,
        paid_on=paid_on,
        staff_id=outcome.staff_id,
        reason_code=None,
        reason_text=None,
    )
    events.paid_in_cash.append(
        {
            **facts_json(inst, channel=row["a_channel"], counterparty=row["a_counterparty"]),
            "paid_on": paid_on.isoformat(),
            "staff_id": outcome.staff_id or "",
            "paid_at": json_time(outcome.occurred_at),
        }
    )


def _return(
    inst: dict[str, Any], row: PaymentRow, outcome: Outcome, policy: OutcomePolicy, events: Events
) -> bool:
    """The money came back; True if it says the person paid (not a representative) died."""
    code = outcome.reason_code or "UNSPECIFIED"
    reason = policy.describe(outcome.reason_code)
    attempt_facts = facts(inst, channel=row["a_channel"], counterparty=row["a_counterparty"])
    inst.update(
        state=model.RETURNED,
        reason_code=code,
        reason_text=fit(reason.text, model.REASON_TEXT_LENGTH),
    )
    events.others.append(
        PaymentReturned(**attempt_facts, reason_code=code, returned_at=outcome.occurred_at)
    )
    return code in model.DECEASED_REASONS and row["a_channel"] != model.AUTHORISED_ACCOUNT


def _fail(
    inst: dict[str, Any],
    row: PaymentRow,
    outcome: Outcome,
    policy: OutcomePolicy,
    now: datetime,
    changes: Changes,
    events: Events,
) -> tuple[str, bool]:
    """The payment failed: the period goes to the post office (cash fallback) or fails. Returns
    the attempt's reason code and whether the holder of the beneficiary's own account died."""
    code = outcome.reason_code or "UNSPECIFIED"
    described = policy.describe(outcome.reason_code)
    text = fit(described.text, model.REASON_TEXT_LENGTH) or ""
    permanent = bool(described.permanent)
    attempt_facts = facts(inst, channel=row["a_channel"], counterparty=row["a_counterparty"])
    events.others.append(
        PaymentFailed(
            **attempt_facts,
            reason_code=code,
            reason_text=text,
            permanent=permanent,
            failed_at=outcome.occurred_at,
        )
    )
    if permanent and code in model.ACCOUNT_REASONS:
        changes.flagged_methods.append((inst["beneficiary_id"], inst["method_id"], code))
        events.others.append(
            AccountFlagged(
                beneficiary_id=inst["beneficiary_id"],
                method_id=inst["method_id"],
                installment_id=str(inst["id"]),
                reason_code=code,
                reason_text=text,
                flagged_at=now,
            )
        )
    # The holder of the beneficiary's own account died: the beneficiary did.
    holder_deceased = code in model.DECEASED_REASONS and row["a_channel"] == model.OWN_ACCOUNT
    if (
        permanent
        and policy.fallback == "cash"
        and model.is_verdict(outcome)
        and not holder_deceased
        and row["a_counterparty"] != model.VNPOST
        and int(row["a_no"]) == 1
    ):
        inst.update(
            state=model.SCHEDULED,
            channel=model.CASH_POST_OFFICE,
            counterparty=model.VNPOST,
            attempt_no=2,
            reason_code=code,
            reason_text=text,
        )
        changes.to_post_office.append(inst)
        events.others.append(InstallmentScheduled(**facts(inst), scheduled_at=now))
    else:
        inst.update(state=model.FAILED, reason_code=code, reason_text=text)
    return code, holder_deceased


def each_of_rejected_files(
    outcomes: Sequence[Outcome], members: Mapping[str, Sequence[str]]
) -> list[Outcome]:
    """A file the bank refused as a whole fails every payment we put in it (`members`: file id
    to its end-to-end ids), with its reason."""
    expanded: list[Outcome] = []
    for outcome in outcomes:
        if outcome.status != model.FILE_REJECTED or outcome.end_to_end_id not in members:
            expanded.append(outcome)  # a file that is not ours is reported as an unknown payment
            continue
        expanded.extend(
            replace(
                outcome,
                end_to_end_id=e2e,
                status="FAILED",
                amount=None,
                reason_code=outcome.reason_code or "FF01",
            )
            for e2e in members[outcome.end_to_end_id]
        )
    return expanded


def fit(value: str | None, length: int) -> str | None:
    """Text a counterparty chose, cut to its column's width in characters (what VARCHAR
    counts, so never inside a UTF-8 sequence), without NULs: a long reason never wedges the
    transaction that records it."""
    if value is None:
        return None
    return value.replace("\x00", "")[:length]


def fitted(outcome: Outcome) -> Outcome:
    """The outcome with its texts fit to their columns."""
    texts = (outcome.reason_code, outcome.bank_reference, outcome.staff_id)
    cut = (
        fit(outcome.reason_code, model.REASON_CODE_LENGTH),
        fit(outcome.bank_reference, model.BANK_REFERENCE_LENGTH),
        fit(outcome.staff_id, model.STAFF_ID_LENGTH),
    )
    if cut == texts:
        return outcome
    return replace(outcome, reason_code=cut[0], bank_reference=cut[1], staff_id=cut[2])


def anomaly(
    kind: str,
    counterparty: str,
    outcome: Outcome,
    installment_id: int | None,
    expected: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A `payment_anomalies` row: an outcome kept for a person to look at."""
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
