"""Installments, payment attempts and batches: their states and the rules that move them.

An installment is what one entitlement owes for one period. It is paid by an attempt (one
end-to-end reference, kept identical across every resend); a second attempt exists only when a
permanent bank failure sends that period to the post office in cash.

    ON_HOLD ──(a verified method)──▶ SCHEDULED ──(bank accepted)──▶ SUBMITTED
    SCHEDULED | SUBMITTED ──▶ SETTLED | FAILED | RETURNED | PAID_CASH
    SETTLED ──(the bank sends the money back, or reverses its debit)──▶ RETURNED
    SUBMITTED ──(the bank reverses its debit before it settled)──▶ FAILED
    SCHEDULED | ON_HOLD ──(entitlement stopped before sending)──▶ CANCELLED
    SUBMITTED ──(permanent bank failure, cash fallback)──▶ SCHEDULED on the post office

A final state never goes back; an outcome for a final installment changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

# Installment states.
ON_HOLD = "ON_HOLD"
SCHEDULED = "SCHEDULED"
SUBMITTED = "SUBMITTED"
SETTLED = "SETTLED"
FAILED = "FAILED"
RETURNED = "RETURNED"
PAID_CASH = "PAID_CASH"
CANCELLED = "CANCELLED"
INSTALLMENT_STATES = (
    ON_HOLD,
    SCHEDULED,
    SUBMITTED,
    SETTLED,
    FAILED,
    RETURNED,
    PAID_CASH,
    CANCELLED,
)
FINAL_STATES = frozenset({SETTLED, FAILED, RETURNED, PAID_CASH, CANCELLED})
OPEN_STATES = frozenset({SCHEDULED, SUBMITTED})

# Attempt states (CREATED: waiting in a batch).
CREATED = "CREATED"
ATTEMPT_OPEN = frozenset({CREATED, SUBMITTED})

# Batch states. PREPARED: made, awaiting its approval (submission never claims it).
BATCH_PREPARED = "PREPARED"
BATCH_READY = "READY"
BATCH_SENDING = "SENDING"
BATCH_RETRY = "RETRY"
BATCH_UNKNOWN = "UNKNOWN"
BATCH_INQUIRING = "INQUIRING"
BATCH_SUBMITTED = "SUBMITTED"
BATCH_COMPLETED = "COMPLETED"
BATCH_REJECTED = "REJECTED"
BATCH_CANCELLED = "CANCELLED"
BATCH_STATES = (
    BATCH_PREPARED,
    BATCH_READY,
    BATCH_SENDING,
    BATCH_RETRY,
    BATCH_UNKNOWN,
    BATCH_INQUIRING,
    BATCH_SUBMITTED,
    BATCH_COMPLETED,
    BATCH_REJECTED,
    BATCH_CANCELLED,
)

# Payment methods.
OWN_ACCOUNT = "OWN_ACCOUNT"
AUTHORISED_ACCOUNT = "AUTHORISED_ACCOUNT"
CASH_POST_OFFICE = "CASH_POST_OFFICE"
VNPOST = "VNPOST"
METHOD_PENDING = "PENDING_VERIFICATION"
METHOD_VERIFIED = "VERIFIED"
METHOD_FAILED = "FAILED"
METHOD_FLAGGED = "FLAGGED"

# Why an installment waits.
HOLD_NO_METHOD = "NO_PAYMENT_METHOD"
HOLD_PENDING_VERIFICATION = "METHOD_PENDING_VERIFICATION"
HOLD_METHOD_FAILED = "METHOD_VERIFICATION_FAILED"
HOLD_METHOD_FLAGGED = "METHOD_FLAGGED"
HOLD_AUTHORISATION = "AUTHORISATION_NOT_VALID"
# Taken out of a batch before it was sent: the current method pays through another counterparty.
HOLD_METHOD_CHANGED = "METHOD_CHANGED"
# Another entitlement of the same scheme already pays the person this period: held for the
# agency to resolve (stop one entitlement), never released by a new payment method.
HOLD_DUPLICATE_ENTITLEMENT = "DUPLICATE_ENTITLEMENT"
ANOMALY_DUPLICATE_ENTITLEMENT = "DUPLICATE_ENTITLEMENT"

# Widths of the texts a counterparty chooses, as the installments table keeps them.
REASON_CODE_LENGTH = 40
REASON_TEXT_LENGTH = 300
BANK_REFERENCE_LENGTH = 64
STAFF_ID_LENGTH = 64

# Reasons that say the account itself is wrong: the agency must fix it.
ACCOUNT_REASONS = frozenset(
    {
        "AC01",
        "AC03",
        "AC04",
        "AC06",
        "AG01",
        "BE01",
        "MD07",
        "NAME_MISMATCH",
        "NOT_FOUND",
        "DECEASED",
    }
)
# Reasons that say the person paid has died.
DECEASED_REASONS = frozenset({"MD07", "DECEASED"})

# What a counterparty can report of a payment. PENDING (a pending booking) moves nothing;
# REVERSED is a booked debit the bank took back; UNREADABLE an entry that could not be read.
PENDING = "PENDING"
REVERSED = "REVERSED"
UNREADABLE = "UNREADABLE"
# A whole file refused: its end_to_end_id is the file's id (the batch id); each payment of the
# batch fails with its reason.
FILE_REJECTED = "FILE_REJECTED"
OutcomeStatus = Literal[
    "SETTLED",
    "FAILED",
    "RETURNED",
    "PAID_CASH",
    "PENDING",
    "REVERSED",
    "UNREADABLE",
    "FILE_REJECTED",
]
# A settled payment whose debit the bank reversed: returned, and kept for a person to look at.
ANOMALY_REVERSED = "REVERSED_AFTER_SETTLEMENT"
# A bank entry that could not be read is kept as an anomaly of this prefix and the bank's reason.
ANOMALY_UNREADABLE_PREFIX = "UNREADABLE_"
REASON_REVERSED = "REVERSED"


def end_to_end_id(installment_id: int, attempt_no: int) -> str:
    """Our reference for one attempt; derived from our own ids, so a resend repeats it."""
    return f"PAY-{installment_id}-{attempt_no}"


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2·base, 4·base … capped."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final word on one attempt, from a callback, a status inquiry or a refusal at intake."""

    end_to_end_id: str
    status: OutcomeStatus
    amount: int | None
    reason_code: str | None
    bank_reference: str | None
    occurred_at: datetime
    paid_on: date | None = None
    staff_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentView:
    """What a decision needs to know about an installment and the attempt an outcome names."""

    installment_state: str
    installment_amount: int
    current_attempt_no: int
    attempt_no: int
    attempt_counterparty: str


Verdict = Literal["APPLY", "IGNORE", "ANOMALY", "PENDING"]


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    new_state: str | None = None
    anomaly: str | None = None


# Reason codes that say the bank already holds what it was sent (ISO 20022 DU01–DU05, AM05 and
# the channels' own words): the payment is in doubt, not refused.
DUPLICATE_REASONS = frozenset(
    {"AM05", "DUPL", "DU01", "DU02", "DU03", "DU04", "DU05", "DUPLICATE", "DUPLICATE_REQUEST"}
)


def is_verdict(outcome: Outcome) -> bool:
    """Whether a failure is the bank's word that this end-to-end id will not be executed, so a
    cash fallback cannot pay it twice. A reversal of a booking is not: banks reverse and book
    again, and one may reach us before the booking it corrects."""
    return outcome.status == "FAILED" and outcome.reason_code not in DUPLICATE_REASONS


def decide(view: PaymentView, outcome: Outcome, counterparty: str) -> Decision:
    """What an outcome does to an installment. Pure: the caller applies it."""
    if view.attempt_counterparty != counterparty:
        return Decision("ANOMALY", anomaly="WRONG_COUNTERPARTY")
    amount_differs = outcome.amount is not None and outcome.amount != view.installment_amount
    if view.attempt_no != view.current_attempt_no:
        # An outcome for an attempt that a cash fallback replaced. Only money moving is news.
        if outcome.status in ("SETTLED", "PAID_CASH"):
            return Decision("ANOMALY", anomaly="SUPERSEDED_ATTEMPT")
        return Decision("IGNORE")
    state = view.installment_state
    if outcome.status == PENDING:
        if amount_differs:
            return Decision("ANOMALY", anomaly="AMOUNT_MISMATCH")
        return Decision("PENDING") if state in OPEN_STATES else Decision("IGNORE")
    if outcome.status == "FAILED" and outcome.reason_code in DUPLICATE_REASONS:
        # The bank refused a copy of what it already has: ask it, never fail the payment.
        return Decision("ANOMALY", anomaly="DUPLICATE_REJECTION")
    if outcome.status in ("SETTLED", "PAID_CASH", "RETURNED", REVERSED) and amount_differs:
        # Money that moved, or came back, in another amount than ours is for a person to look at.
        return Decision("ANOMALY", anomaly="AMOUNT_MISMATCH")
    if outcome.status == REVERSED:
        # The bank took its debit back: money that never left, or that came back.
        if state in OPEN_STATES:
            return Decision("APPLY", new_state=FAILED)
        if state == SETTLED:
            return Decision("APPLY", new_state=RETURNED, anomaly=ANOMALY_REVERSED)
        return Decision("IGNORE")
    if state in OPEN_STATES:
        return Decision("APPLY", new_state=outcome.status)
    if state == SETTLED and outcome.status == "RETURNED":
        return Decision("APPLY", new_state=RETURNED)
    if state in FINAL_STATES:
        # Duplicates and reordered deliveries land here: a final state never goes back. A
        # contradiction (failed after settled) is kept for a person to look at.
        contradicts = (state == SETTLED and outcome.status == "FAILED") or (
            state == FAILED and outcome.status in ("SETTLED", "PAID_CASH")
        )
        if contradicts:
            return Decision("ANOMALY", anomaly="CONFLICTING_OUTCOME")
        return Decision("IGNORE")
    # ON_HOLD never has an attempt; anything else is not ours to move.
    return Decision("ANOMALY", anomaly="UNEXPECTED_STATE")
