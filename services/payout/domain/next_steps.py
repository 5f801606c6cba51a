"""What an officer does next about a payment that needs a person: one code per kind of work, the
same for an installment, a cash item, a payment method and an anomaly. The API gives the code and
its English text; the console shows the code in the officer's language."""

from __future__ import annotations

from services.payout.domain import identity, model

COLLECT_METHOD = "COLLECT_METHOD"
WAIT_VERIFICATION = "WAIT_VERIFICATION"
FIX_ACCOUNT = "FIX_ACCOUNT"
CONFIRM_ACCOUNT = "CONFIRM_ACCOUNT"
RENEW_AUTHORISATION = "RENEW_AUTHORISATION"
WAIT_SUPPLEMENT = "WAIT_SUPPLEMENT"
RESOLVE_DUPLICATE = "RESOLVE_DUPLICATE"
DECIDE_STOP = "DECIDE_STOP"
CHECK_IDENTITY = "CHECK_IDENTITY"
CHECK_DEATH = "CHECK_DEATH"
HAND_OVER = "HAND_OVER"
DECIDE_REPAYMENT = "DECIDE_REPAYMENT"
ASK_COUNTERPARTY = "ASK_COUNTERPARTY"
RECONCILE = "RECONCILE"
CHECK_DOUBLE_PAYMENT = "CHECK_DOUBLE_PAYMENT"
TELL_OPERATIONS = "TELL_OPERATIONS"
WAIT_SENDING = "WAIT_SENDING"
WAIT_OUTCOME = "WAIT_OUTCOME"
NOTHING = "NOTHING"

TEXT = {
    COLLECT_METHOD: "collect an account, or register the person for cash",
    WAIT_VERIFICATION: "wait for the bank to verify the account; the next pass pays it",
    FIX_ACCOUNT: "correct the account (bank, number, holder) or route the person to cash",
    CONFIRM_ACCOUNT: "a bank refused a payment to this account: confirm it with the person, or "
    "route the person to cash",
    RENEW_AUTHORISATION: "renew the representative's authorisation, or change the method",
    WAIT_SUPPLEMENT: "the method changed after approval: it is paid in a supplementary run",
    RESOLVE_DUPLICATE: "two entitlements of one scheme pay the person: stop the wrong one",
    DECIDE_STOP: "the population registry records the holder as deceased: decide the proposed "
    "stop of the entitlement",
    CHECK_IDENTITY: "check the name, birth date and CCCD number with the population registry",
    CHECK_DEATH: "the bank or the post office reports a death: check it, then stop the "
    "entitlement or change the representative",
    HAND_OVER: "hand the cash over and record it, or record the return with its reason",
    DECIDE_REPAYMENT: "the agency decides: a new account, or cash again next period",
    ASK_COUNTERPARTY: "ask the bank or the post office why it failed, then fix the method",
    RECONCILE: "reconcile with the bank's statement before paying again",
    CHECK_DOUBLE_PAYMENT: "an earlier attempt or the bank says it was paid: check it was not "
    "paid twice, and never resend",
    TELL_OPERATIONS: "tell operations: the answer does not fit this payment",
    WAIT_SENDING: "nothing yet: it waits for its part's approval, then for sending",
    WAIT_OUTCOME: "nothing yet: the bank or the post office has not answered",
    NOTHING: "nothing: done",
}

_HOLDS = {
    model.HOLD_NO_METHOD: COLLECT_METHOD,
    model.HOLD_PENDING_VERIFICATION: WAIT_VERIFICATION,
    model.HOLD_METHOD_FAILED: FIX_ACCOUNT,
    model.HOLD_METHOD_FLAGGED: CONFIRM_ACCOUNT,
    model.HOLD_AUTHORISATION: RENEW_AUTHORISATION,
    model.HOLD_METHOD_CHANGED: WAIT_SUPPLEMENT,
    model.HOLD_DUPLICATE_ENTITLEMENT: RESOLVE_DUPLICATE,
    identity.HOLDER_DECEASED: DECIDE_STOP,
    identity.IDENTITY_MISMATCH: CHECK_IDENTITY,
    identity.IDENTITY_NOT_FOUND: CHECK_IDENTITY,
}
HOLD_REASONS = frozenset(_HOLDS)

_METHODS = {model.METHOD_FAILED: FIX_ACCOUNT, model.METHOD_FLAGGED: CONFIRM_ACCOUNT}

_ANOMALIES = {
    model.ANOMALY_DUPLICATE_ENTITLEMENT: RESOLVE_DUPLICATE,
    model.ANOMALY_REVERSED: RECONCILE,
    "AMOUNT_MISMATCH": RECONCILE,
    "AMOUNT_MISSING": RECONCILE,
    "CONFLICTING_OUTCOME": RECONCILE,
    "UNKNOWN_PAYMENT": RECONCILE,
    "SUPERSEDED_ATTEMPT": CHECK_DOUBLE_PAYMENT,
    "DUPLICATE_REJECTION": CHECK_DOUBLE_PAYMENT,
    "WRONG_COUNTERPARTY": TELL_OPERATIONS,
    "UNEXPECTED_STATE": TELL_OPERATIONS,
}
ANOMALY_KINDS = frozenset(_ANOMALIES)


def for_installment(
    state: str, hold_reason: str | None, reason_code: str | None, counterparty: str | None
) -> str:
    """The next step for an installment (or a cash item, whose counterparty is the post office)."""
    if state == model.ON_HOLD:
        return _HOLDS.get(hold_reason or "", TELL_OPERATIONS)
    if state in (model.FAILED, model.RETURNED):
        if reason_code in model.DECEASED_REASONS:
            return CHECK_DEATH
        if counterparty == model.VNPOST:
            return DECIDE_REPAYMENT
        if reason_code == model.REASON_REVERSED:
            return RECONCILE
        if reason_code in model.ACCOUNT_REASONS:
            return FIX_ACCOUNT
        return ASK_COUNTERPARTY
    if state == model.SUBMITTED and counterparty == model.VNPOST:
        return HAND_OVER
    if state == model.SCHEDULED:
        return WAIT_SENDING
    if state == model.SUBMITTED:
        return WAIT_OUTCOME
    return NOTHING


def for_method(status: str) -> str:
    """The next step for a payment method that failed verification or was flagged by a bank."""
    return _METHODS.get(status, NOTHING)


def for_anomaly(kind: str) -> str:
    if kind.startswith(model.ANOMALY_UNREADABLE_PREFIX):
        return RECONCILE
    return _ANOMALIES.get(kind, TELL_OPERATIONS)


def described(code: str) -> dict[str, str]:
    """The fields an API view carries: the code, and its English text."""
    return {"next_step": code, "next_step_text": TEXT[code]}
