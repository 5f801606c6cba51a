"""Event contracts: the only thing one service knows about another.

Every event type is versioned (`...v1`), lives on one topic and is keyed by its aggregate id so
that one beneficiary's or one payment's events stay in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scheme = Literal[
    "PENSION",
    "SI_ALLOWANCE",
    "UNEMPLOYMENT",
    "VOCATIONAL_TRAINING",
    "MERITORIOUS",
    "SOCIAL_PROTECTION",
    "OVERSEAS_LABOUR",
]
Agency = Literal["BHXH", "DOLISA", "ESC"]
PaymentMethodKind = Literal["OWN_ACCOUNT", "AUTHORISED_ACCOUNT", "CASH_POST_OFFICE"]
Period = str  # "YYYY-MM", Vietnam time
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
Vnd = int  # whole đồng, never a float

# Topics: <service>.<aggregate>.v1
CLAIM_TOPIC = "intake.claim.v1"
BENEFICIARY_TOPIC = "intake.beneficiary.v1"
ACCOUNT_VERIFICATION_TOPIC = "payout.account-verification.v1"
PAYMENT_TOPIC = "payout.payment.v1"
ALL_TOPICS = (CLAIM_TOPIC, BENEFICIARY_TOPIC, ACCOUNT_VERIFICATION_TOPIC, PAYMENT_TOPIC)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- intake: claims -------------------------------------------------------------------------


class ClaimReceived(Contract):
    claim_id: str
    portal_dossier_id: str
    beneficiary_id: str
    scheme: Scheme
    agency: Agency
    commune_code: str
    commune_list_date: date
    requested_method: PaymentMethodKind
    received_at: datetime


class ClaimDecided(Contract):
    claim_id: str
    beneficiary_id: str
    scheme: Scheme
    agency: Agency
    outcome: Literal["APPROVED", "REJECTED"]
    decision_number: str | None = None
    entitlement_id: str | None = None
    amount_per_installment: Vnd | None = Field(default=None, ge=0)
    installments: int | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    commune_code: str
    commune_list_date: date
    decided_at: datetime


# --- intake: beneficiaries, entitlements, payment methods ------------------------------------


class BeneficiaryRegistered(Contract):
    beneficiary_id: str
    national_id: str
    full_name: str
    date_of_birth: date
    si_number: str | None = None
    commune_code: str
    commune_list_date: date
    registered_via: Literal["PORTAL", "ROLL"]
    registered_at: datetime


class Schedule(Contract):
    kind: Literal["ONE_OFF", "FIXED_MONTHLY", "OPEN_MONTHLY"]
    start_period: Period = Field(pattern=PERIOD_PATTERN)
    installments: int | None = Field(default=None, ge=1)


class EntitlementGranted(Contract):
    entitlement_id: str
    beneficiary_id: str
    claim_id: str | None = None
    scheme: Scheme
    agency: Agency
    decision_number: str
    amount_per_installment: Vnd = Field(gt=0)
    schedule: Schedule
    commune_code: str
    commune_list_date: date
    granted_at: datetime


class EntitlementStopped(Contract):
    entitlement_id: str
    beneficiary_id: str
    reason: Literal["DEATH", "RETURN_TO_WORK", "END_OF_ELIGIBILITY", "OTHER"]
    effective_period: Period = Field(pattern=PERIOD_PATTERN)
    stopped_at: datetime


class Representative(Contract):
    national_id: str
    full_name: str
    relationship: str
    power_of_attorney_ref: str
    valid_from: date
    valid_until: date | None = None


class PaymentMethodChanged(Contract):
    beneficiary_id: str
    method_id: str
    method: PaymentMethodKind
    bank_bin: str | None = None
    account_number: str | None = None
    account_holder_name: str | None = None
    representative: Representative | None = None
    cash_reason: str | None = None
    status: Literal["PENDING_VERIFICATION", "VERIFIED"]
    channel: Literal["PORTAL", "API", "SPREADSHEET", "ROLL"]
    changed_at: datetime


class PaymentMethodVerificationRecorded(Contract):
    beneficiary_id: str
    method_id: str
    result: Literal["VERIFIED", "FAILED"]
    reason: str | None = None
    recorded_at: datetime


# --- payout: account verification -----------------------------------------------------------


class AccountVerified(Contract):
    beneficiary_id: str
    method_id: str
    bank_bin: str
    verified_at: datetime


class AccountVerificationFailed(Contract):
    beneficiary_id: str
    method_id: str
    reason: Literal["NO_SUCH_ACCOUNT", "NAME_MISMATCH", "BANK_NOT_SUPPORTED"]
    failed_at: datetime


class AccountFlagged(Contract):
    """A payment failed permanently: the agency must fix the account."""

    beneficiary_id: str
    method_id: str | None = None
    installment_id: str
    reason_code: str
    reason_text: str
    flagged_at: datetime


# --- payout: payments -----------------------------------------------------------------------


class PaymentFacts(Contract):
    """Dimensions every payment event carries, so read models need no joins."""

    installment_id: str
    entitlement_id: str
    beneficiary_id: str
    period: Period = Field(pattern=PERIOD_PATTERN)
    amount: Vnd = Field(gt=0)
    scheme: Scheme
    agency: Agency
    channel: PaymentMethodKind
    counterparty: str  # bank BIN or VNPOST
    commune_code: str
    commune_list_date: date


class InstallmentScheduled(PaymentFacts):
    scheduled_at: datetime


class PaymentSubmitted(PaymentFacts):
    batch_id: str
    end_to_end_id: str
    submitted_at: datetime


class PaymentSettled(PaymentFacts):
    end_to_end_id: str
    bank_reference: str | None = None
    settled_at: datetime


class PaymentFailed(PaymentFacts):
    reason_code: str
    reason_text: str
    permanent: bool
    failed_at: datetime


class PaymentReturned(PaymentFacts):
    reason_code: str
    returned_at: datetime


class PaymentPaidInCash(PaymentFacts):
    paid_on: date
    staff_id: str
    paid_at: datetime


class InstallmentCancelled(PaymentFacts):
    reason: str
    cancelled_at: datetime


# --- registry -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventContract:
    type: str
    topic: str
    model: type[Contract]
    key_field: str


def _contract(name: str, topic: str, model: type[Contract], key_field: str) -> EventContract:
    service = topic.split(".", 1)[0]
    return EventContract(f"vn.benefits.{service}.{name}.v1", topic, model, key_field)


CONTRACTS: dict[str, EventContract] = {
    c.type: c
    for c in (
        _contract("claim-received", CLAIM_TOPIC, ClaimReceived, "claim_id"),
        _contract("claim-decided", CLAIM_TOPIC, ClaimDecided, "claim_id"),
        _contract("beneficiary-registered", BENEFICIARY_TOPIC, BeneficiaryRegistered, "beneficiary_id"),
        _contract("entitlement-granted", BENEFICIARY_TOPIC, EntitlementGranted, "beneficiary_id"),
        _contract("entitlement-stopped", BENEFICIARY_TOPIC, EntitlementStopped, "beneficiary_id"),
        _contract("payment-method-changed", BENEFICIARY_TOPIC, PaymentMethodChanged, "beneficiary_id"),
        _contract(
            "payment-method-verification-recorded",
            BENEFICIARY_TOPIC,
            PaymentMethodVerificationRecorded,
            "beneficiary_id",
        ),
        _contract("account-verified", ACCOUNT_VERIFICATION_TOPIC, AccountVerified, "beneficiary_id"),
        _contract(
            "account-verification-failed",
            ACCOUNT_VERIFICATION_TOPIC,
            AccountVerificationFailed,
            "beneficiary_id",
        ),
        _contract("account-flagged", ACCOUNT_VERIFICATION_TOPIC, AccountFlagged, "beneficiary_id"),
        _contract("installment-scheduled", PAYMENT_TOPIC, InstallmentScheduled, "installment_id"),
        _contract("payment-submitted", PAYMENT_TOPIC, PaymentSubmitted, "installment_id"),
        _contract("payment-settled", PAYMENT_TOPIC, PaymentSettled, "installment_id"),
        _contract("payment-failed", PAYMENT_TOPIC, PaymentFailed, "installment_id"),
        _contract("payment-returned", PAYMENT_TOPIC, PaymentReturned, "installment_id"),
        _contract("payment-paid-in-cash", PAYMENT_TOPIC, PaymentPaidInCash, "installment_id"),
        _contract("installment-cancelled", PAYMENT_TOPIC, InstallmentCancelled, "installment_id"),
    )
}
CONTRACT_BY_MODEL: dict[type[Contract], EventContract] = {c.model: c for c in CONTRACTS.values()}


class UnknownEventType(LookupError):
    pass


def contract_for(event_type: str) -> EventContract:
    try:
        return CONTRACTS[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type or version: {event_type!r}") from None
