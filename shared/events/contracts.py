"""Event contracts: the only thing one service knows about another.

Every event type is versioned (`...v1`), lives on one topic and is keyed by its aggregate id so
that one beneficiary's or one payment's events stay in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

# --- limits ---------------------------------------------------------------------------------
# Every length and range an event can carry, in one place: producers are held to them when they
# build an event (intake's API and uploads reuse these types), and every consumer column that
# stores a field is at least this wide (tests/shared/test_contract_limits.py reads them on
# PostgreSQL). A value a producer accepts therefore always fits where a consumer keeps it.
MAX_VND = 10**12 - 1  # a trillion đồng: far above any benefit, far below BIGINT

Period = Annotated[
    str, Field(min_length=7, max_length=7, pattern=PERIOD_PATTERN)
]  # "YYYY-MM", Vietnam time
Vnd = Annotated[int, Field(ge=0, le=MAX_VND)]  # whole đồng, never a float
# A period's total or budget for a scheme: a country's month of pensions is some twenty trillion
# đồng, so totals have a bound of their own (still far below BIGINT).
MAX_VND_TOTAL = 10**15 - 1
VndTotal = Annotated[int, Field(ge=0, le=MAX_VND_TOTAL)]
InstallmentCount = Annotated[int, Field(ge=1, le=600)]  # fifty years of months
Id = Annotated[str, Field(min_length=1, max_length=64)]
PersonName = Annotated[str, Field(min_length=1, max_length=200)]
NationalId = Annotated[str, Field(min_length=12, max_length=12, pattern=r"^[0-9]{12}$")]  # CCCD
SiNumber = Annotated[str, Field(min_length=10, max_length=10, pattern=r"^[0-9]{10}$")]
CommuneCode = Annotated[str, Field(min_length=5, max_length=5, pattern=r"^[0-9]{5}$")]
BankBin = Annotated[str, Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]  # NAPAS BIN
AccountNumber = Annotated[str, Field(min_length=1, max_length=19)]
Counterparty = Annotated[
    str, Field(min_length=6, max_length=6, pattern=r"^([0-9]{6}|VNPOST)$")
]  # BIN or VNPOST
PortalDossierId = Annotated[str, Field(min_length=1, max_length=100)]
DecisionNumber = Annotated[str, Field(min_length=1, max_length=100)]
CashReason = Annotated[str, Field(min_length=1, max_length=500)]
Relationship = Annotated[str, Field(min_length=1, max_length=100)]
PowerOfAttorneyRef = Annotated[str, Field(min_length=1, max_length=100)]
ReasonCode = Annotated[str, Field(min_length=1, max_length=50)]
ReasonText = Annotated[str, Field(min_length=1, max_length=1000)]
VerificationReason = Annotated[
    str, Field(min_length=1, max_length=200)
]  # NAME_MISMATCH, FLAGGED:<code>…
EndToEndId = Annotated[str, Field(min_length=1, max_length=35)]  # ISO 20022 EndToEndId
BatchId = Annotated[str, Field(min_length=1, max_length=40)]


def _cut(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda v: v[:limit] if isinstance(v, str) else v)


# Text a bank or the post office chose: cut to its limit rather than refused, so that an odd
# answer never stops payout from recording (and announcing) what happened to a payment.
BankReasonCode = Annotated[str, _cut(50), Field(max_length=50)]
BankReasonText = Annotated[str, _cut(1000), Field(max_length=1000)]
BankReference = Annotated[str, _cut(64), Field(max_length=64)]
StaffId = Annotated[str, _cut(64), Field(max_length=64)]


def max_length_of(limited: object) -> int:
    """The max_length that one of the types above declares (for checks outside pydantic)."""
    for constraint in getattr(limited, "__metadata__", ()):
        for item in getattr(constraint, "metadata", [constraint]):
            if isinstance(item, annotated_types.MaxLen):
                return item.max_length
    raise TypeError(f"{limited!r} declares no max_length")


# Topics: <service>.<aggregate>.v1
CLAIM_TOPIC = "intake.claim.v1"
BENEFICIARY_TOPIC = "intake.beneficiary.v1"
ACCOUNT_VERIFICATION_TOPIC = "payout.account-verification.v1"
PAYMENT_TOPIC = "payout.payment.v1"
CYCLE_TOPIC = "payout.cycle.v1"
REVALIDATION_TOPIC = "intake.revalidation.v1"
ALL_TOPICS = (
    CLAIM_TOPIC,
    BENEFICIARY_TOPIC,
    ACCOUNT_VERIFICATION_TOPIC,
    PAYMENT_TOPIC,
    CYCLE_TOPIC,
    REVALIDATION_TOPIC,
)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- intake: claims -------------------------------------------------------------------------


class ClaimReceived(Contract):
    claim_id: Id
    portal_dossier_id: PortalDossierId
    beneficiary_id: Id
    scheme: Scheme
    agency: Agency
    commune_code: CommuneCode
    commune_list_date: date
    requested_method: PaymentMethodKind
    received_at: datetime


class ClaimDecided(Contract):
    claim_id: Id
    beneficiary_id: Id
    scheme: Scheme
    agency: Agency
    outcome: Literal["APPROVED", "REJECTED"]
    decision_number: DecisionNumber | None = None
    entitlement_id: Id | None = None
    amount_per_installment: Vnd | None = None
    installments: InstallmentCount | None = None
    reason_code: ReasonCode | None = None
    reason_text: ReasonText | None = None
    commune_code: CommuneCode
    commune_list_date: date
    decided_at: datetime


# --- intake: beneficiaries, entitlements, payment methods ------------------------------------
# The beneficiary topic is kept for ever: it carries only what a consumer needs, which is the
# name (payout's name inquiry compares it with the bank's) and never the CCCD, the date of birth
# or the social-insurance number. The v1 events that did carry them stay readable (the `...V1`
# models below); producers emit v2.


class BeneficiaryRegistered(Contract):
    beneficiary_id: Id
    full_name: PersonName
    commune_code: CommuneCode
    commune_list_date: date
    registered_via: Literal["PORTAL", "ROLL"]
    registered_at: datetime


class BeneficiaryRegisteredV1(BeneficiaryRegistered):
    """Read only: events written before v2."""

    national_id: NationalId
    date_of_birth: date
    si_number: SiNumber | None = None


class Schedule(Contract):
    kind: Literal["ONE_OFF", "FIXED_MONTHLY", "OPEN_MONTHLY"]
    start_period: Period
    installments: InstallmentCount | None = None


class EntitlementGranted(Contract):
    entitlement_id: Id
    beneficiary_id: Id
    claim_id: Id | None = None
    scheme: Scheme
    agency: Agency
    decision_number: DecisionNumber
    amount_per_installment: Vnd = Field(gt=0)
    schedule: Schedule
    commune_code: CommuneCode
    commune_list_date: date
    granted_at: datetime


class EntitlementStopped(Contract):
    entitlement_id: Id
    beneficiary_id: Id
    reason: Literal["DEATH", "RETURN_TO_WORK", "END_OF_ELIGIBILITY", "OTHER"]
    effective_period: Period
    stopped_at: datetime


class Representative(Contract):
    """Whose account an authorised payment goes to: the name the bank must confirm and the
    validity of the authorisation."""

    full_name: PersonName
    valid_from: date
    valid_until: date | None = None


class RepresentativeV1(Representative):
    national_id: NationalId
    relationship: Relationship
    power_of_attorney_ref: PowerOfAttorneyRef


class PaymentMethodChanged(Contract):
    beneficiary_id: Id
    method_id: Id
    method: PaymentMethodKind
    bank_bin: BankBin | None = None
    account_number: AccountNumber | None = None
    account_holder_name: PersonName | None = None
    representative: Representative | None = None
    cash_reason: CashReason | None = None
    status: Literal["PENDING_VERIFICATION", "VERIFIED"]
    channel: Literal["PORTAL", "API", "SPREADSHEET", "ROLL"]
    changed_at: datetime


class PaymentMethodChangedV1(PaymentMethodChanged):
    """Read only: events written before v2."""

    representative: RepresentativeV1 | None = None


class PaymentMethodVerificationRecorded(Contract):
    beneficiary_id: Id
    method_id: Id
    result: Literal["VERIFIED", "FAILED"]
    reason: VerificationReason | None = None
    recorded_at: datetime


# --- payout: account verification -----------------------------------------------------------


class AccountVerified(Contract):
    beneficiary_id: Id
    method_id: Id
    bank_bin: BankBin
    verified_at: datetime


class AccountVerificationFailed(Contract):
    beneficiary_id: Id
    method_id: Id
    reason: Literal["NO_SUCH_ACCOUNT", "NAME_MISMATCH", "BANK_NOT_SUPPORTED"]
    failed_at: datetime


class AccountFlagged(Contract):
    """A payment failed permanently: the agency must fix the account."""

    beneficiary_id: Id
    method_id: Id | None = None
    installment_id: Id
    reason_code: BankReasonCode
    reason_text: BankReasonText
    flagged_at: datetime


# --- payout: payments -----------------------------------------------------------------------


class PaymentFacts(Contract):
    """Dimensions every payment event carries, so read models need no joins."""

    installment_id: Id
    entitlement_id: Id
    beneficiary_id: Id
    period: Period
    amount: Vnd = Field(gt=0)
    scheme: Scheme
    agency: Agency
    channel: PaymentMethodKind
    counterparty: Counterparty
    commune_code: CommuneCode
    commune_list_date: date


class InstallmentScheduled(PaymentFacts):
    scheduled_at: datetime


class PaymentSubmitted(PaymentFacts):
    batch_id: BatchId
    end_to_end_id: EndToEndId
    submitted_at: datetime


class PaymentSettled(PaymentFacts):
    end_to_end_id: EndToEndId
    bank_reference: BankReference | None = None
    settled_at: datetime


class PaymentFailed(PaymentFacts):
    reason_code: BankReasonCode
    reason_text: BankReasonText
    permanent: bool
    failed_at: datetime


class PaymentReturned(PaymentFacts):
    reason_code: BankReasonCode
    returned_at: datetime


class PaymentPaidInCash(PaymentFacts):
    paid_on: date
    staff_id: StaffId
    paid_at: datetime


class InstallmentCancelled(PaymentFacts):
    reason: ReasonCode
    cancelled_at: datetime


# --- payout: cycles (keyed by period, so one period's events stay in order) ------------------

UserId = Annotated[str, Field(min_length=1, max_length=100)]  # an officer's or a client's id
Digest = Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]  # SHA-256
MAX_REVALIDATION_HOLDS = 5_000  # per event: a larger result goes in several parts


class CycleOpened(Contract):
    """A period's cycle is being prepared: intake revalidates the identities of the people it
    pays (the answer is `RevalidationCompleted`)."""

    period: Period
    opened_at: datetime


class SchemeTotal(Contract):
    scheme: Scheme
    count: int = Field(ge=0, le=10_000_000)
    amount: VndTotal
    envelope: VndTotal | None = None  # the agency's budget for the scheme and period, when loaded


class CycleApproved(Contract):
    """A checker of `agency` approved exactly these totals of the period; they may now be sent."""

    period: Period
    agency: Agency
    approval_id: Id
    digest: Digest
    approved_by: UserId
    totals: list[SchemeTotal] = Field(max_length=16)
    approved_at: datetime


class EnvelopeSet(Contract):
    """An agency's budget for a scheme and period (whole đồng)."""

    period: Period
    agency: Agency
    scheme: Scheme
    amount: VndTotal
    set_by: UserId
    set_at: datetime


# --- intake: identity revalidation before a period is paid -----------------------------------

RevalidationOutcome = Literal["DECEASED", "IDENTITY_MISMATCH", "NOT_FOUND"]


class RevalidationHold(Contract):
    beneficiary_id: Id
    outcome: RevalidationOutcome


class RevalidationCompleted(Contract):
    """The population registry's answer for everyone intake pays in `period`, in parts of at
    most MAX_REVALIDATION_HOLDS holds; `last` marks the part that ends it. Only the people who
    must not be paid are named; no CCCD leaves intake."""

    period: Period
    part: int = Field(ge=1, le=10_000)
    last: bool
    checked: int = Field(
        ge=0, le=100_000_000
    )  # people asked about (the whole pass, on the last part)
    holds: list[RevalidationHold] = Field(max_length=MAX_REVALIDATION_HOLDS)
    completed_at: datetime


# --- registry -------------------------------------------------------------------------------


# Named outside the class: inside it, `type` is the field below.
ContractModel = type[Contract]


@dataclass(frozen=True, slots=True)
class EventContract:
    type: str
    topic: str
    model: ContractModel
    key_field: str


def _contract(
    name: str, topic: str, model: type[Contract], key_field: str, version: int = 1
) -> EventContract:
    service = topic.split(".", 1)[0]
    return EventContract(f"vn.benefits.{service}.{name}.v{version}", topic, model, key_field)


CONTRACTS: dict[str, EventContract] = {
    c.type: c
    for c in (
        _contract("claim-received", CLAIM_TOPIC, ClaimReceived, "claim_id"),
        _contract("claim-decided", CLAIM_TOPIC, ClaimDecided, "claim_id"),
        _contract(
            "beneficiary-registered", BENEFICIARY_TOPIC, BeneficiaryRegisteredV1, "beneficiary_id"
        ),
        _contract(
            "beneficiary-registered", BENEFICIARY_TOPIC, BeneficiaryRegistered, "beneficiary_id", 2
        ),
        _contract("entitlement-granted", BENEFICIARY_TOPIC, EntitlementGranted, "beneficiary_id"),
        _contract("entitlement-stopped", BENEFICIARY_TOPIC, EntitlementStopped, "beneficiary_id"),
        _contract(
            "payment-method-changed", BENEFICIARY_TOPIC, PaymentMethodChangedV1, "beneficiary_id"
        ),
        _contract(
            "payment-method-changed", BENEFICIARY_TOPIC, PaymentMethodChanged, "beneficiary_id", 2
        ),
        _contract(
            "payment-method-verification-recorded",
            BENEFICIARY_TOPIC,
            PaymentMethodVerificationRecorded,
            "beneficiary_id",
        ),
        _contract(
            "account-verified", ACCOUNT_VERIFICATION_TOPIC, AccountVerified, "beneficiary_id"
        ),
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
        _contract("cycle-opened", CYCLE_TOPIC, CycleOpened, "period"),
        _contract("cycle-approved", CYCLE_TOPIC, CycleApproved, "period"),
        _contract("envelope-set", CYCLE_TOPIC, EnvelopeSet, "period"),
        _contract("revalidation-completed", REVALIDATION_TOPIC, RevalidationCompleted, "period"),
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
