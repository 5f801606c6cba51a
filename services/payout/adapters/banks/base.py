"""The one interface every payment channel implements (NAPAS-style banks, ISO 20022 file banks,
the post office), its value types and its errors.

Amounts are whole VND in `int`. Times are aware UTC datetimes. Identifiers: `end_to_end_id` is
our reference for one installment's payment, kept identical across every resend; `batch_id` is
the idempotency key of a submission. ISO 20022 limits both to 35 characters.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from services.payout.domain.model import DUPLICATE_REASONS, OutcomeStatus

VNPOST = "VNPOST"

NameInquiryStatus = Literal["FOUND", "NOT_FOUND", "BANK_NOT_SUPPORTED"]
PaymentStatusCode = Literal[
    "UNKNOWN_TO_BANK", "PENDING", "SETTLED", "FAILED", "RETURNED", "PAID_CASH"
]
# What a callback reports of a payment is the domain's `OutcomeStatus` (PENDING, REVERSED,
# UNREADABLE and FILE_REJECTED among them).
CallbackRejection = Literal[
    "missing_signature", "stale_timestamp", "bad_signature", "wrong_counterparty", "malformed_body"
]


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """One payment to one person. Bank payments carry `account_number` and `bank_bin`; cash
    payments through the post office carry `commune_code` (where the person is paid)."""

    end_to_end_id: str
    amount: int
    account_number: str | None
    account_name: str
    bank_bin: str | None
    commune_code: str | None
    remittance_info: str


@dataclass(frozen=True, slots=True)
class PaymentBatch:
    """Instructions for one counterparty (a BIN or VNPOST) with declared control totals."""

    batch_id: str
    counterparty: str
    control_count: int
    control_sum: int
    items: tuple[PaymentInstruction, ...]
    execution_date: date

    @classmethod
    def of(
        cls,
        batch_id: str,
        counterparty: str,
        items: tuple[PaymentInstruction, ...] | list[PaymentInstruction],
        execution_date: date,
    ) -> PaymentBatch:
        """A batch whose control totals are computed from its items."""
        items = tuple(items)
        return cls(
            batch_id=batch_id,
            counterparty=counterparty,
            control_count=len(items),
            control_sum=sum(item.amount for item in items),
            items=items,
            execution_date=execution_date,
        )

    def totals_match(self) -> bool:
        return self.control_count == len(self.items) and self.control_sum == sum(
            item.amount for item in self.items
        )


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What the counterparty took: accepted end-to-end ids, and (end-to-end id, reason code)
    for the ones it refused at intake. An accepted payment's outcome comes later. A channel
    that sends a batch in several requests (the post office, one list per commune) also says
    which items went in a request whose answer says nothing (`in_doubt`: ask for their status)
    and which were not taken (`not_sent`: send them again)."""

    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    in_doubt: tuple[str, ...] = ()
    not_sent: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NameInquiryResult:
    """The account holder's name as the bank keeps it: upper case, without diacritics."""

    status: NameInquiryStatus
    account_name: str | None


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    end_to_end_id: str
    status: PaymentStatusCode
    reason_code: str | None
    amount: int | None
    bank_reference: str | None
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """One final outcome from a callback. `event_id` is stable: a redelivery repeats it."""

    event_id: str
    end_to_end_id: str
    status: OutcomeStatus
    amount: int
    reason_code: str | None
    bank_reference: str | None
    occurred_at: datetime
    paid_on: date | None = None
    staff_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One line of a day's statement: CREDITED or RETURNED for banks, PAID or RETURNED for the
    post office."""

    end_to_end_id: str
    amount: int
    bank_reference: str | None
    value_date: date
    status: str


class BankError(Exception):
    """Base of the errors a channel raises when a call does not go through."""


class TransientBankError(BankError):
    """Nothing happened (503, connection refused, throttled): resend with the same references."""


class CredentialsRefused(TransientBankError):
    """The counterparty refused our credentials (401/403): a verdict on us, not on the payment.
    Retried like a transient failure; someone must fix the configuration."""


class UnknownOutcome(BankError):
    """The request was sent and the answer does not say what happened (timeout, 502/504, a 409
    duplicate, a body that cannot be read): ask for the payment status before resending."""


class PermanentBankError(BankError):
    """The request itself is refused with an explicit code (for example
    CONTROL_TOTALS_MISMATCH); resending the same request will not help."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


class CallbackRejected(Exception):
    """A callback that must not be trusted or cannot be read."""

    def __init__(self, reason: CallbackRejection, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason: CallbackRejection = reason


@runtime_checkable
class BankChannel(Protocol):
    """A counterparty that pays people: a bank (by BIN) or the post office (VNPOST)."""

    counterparty: str

    async def name_inquiry(self, account_number: str) -> NameInquiryResult: ...

    async def submit_batch(self, batch: PaymentBatch) -> SubmitResult: ...

    async def payment_status(self, end_to_end_id: str) -> PaymentStatus: ...

    def parse_callback(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> tuple[str, list[PaymentOutcome]]: ...

    async def statement(self, day: date) -> list[StatementEntry]: ...


class Reason(NamedTuple):
    """Text of a reason code, "Vietnamese / English", whether retrying can ever help, and what
    the code means for us: permanent, transient, ambiguous (ask for the status) or deceased."""

    text: str
    permanent: bool
    kind: str = "transient"

    @property
    def vi(self) -> str:
        return self.text.split(" / ", 1)[0]

    @property
    def en(self) -> str:
        parts = self.text.split(" / ", 1)
        return parts[1] if len(parts) == 2 else parts[0]


REASON_KINDS = frozenset({"permanent", "transient", "ambiguous", "deceased"})
_DATA = Path(__file__).with_name("data")
# ISO 20022 ExternalStatusReason1Code (pain.002 StsRsnInf/Rsn/Cd), ExternalReturnReason1Code
# (camt.054 RtrInf/Rsn/Cd) and our own checks; the first file naming a code wins.
REASON_FILES = (
    _DATA / "status_reasons.csv",
    _DATA / "return_reasons.csv",
    _DATA / "own_reasons.csv",
)


def load_reasons(paths: tuple[Path, ...] = REASON_FILES) -> dict[str, Reason]:
    """Reason codes from the code-set files: `code,kind,vi,en`."""
    reasons: dict[str, Reason] = {}
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                code, kind = row["code"].strip(), row["kind"].strip()
                if kind not in REASON_KINDS:
                    raise ValueError(f"{path.name}: {code} has an unknown kind {kind!r}")
                text = f"{row['vi'].strip()} / {row['en'].strip()}"
                reasons.setdefault(code, Reason(text, kind in ("permanent", "deceased"), kind))
    return reasons


REASONS: dict[str, Reason] = load_reasons()


# Answers that say the counterparty already holds this payment or request: ask for its status.
DUPLICATE_CODES = DUPLICATE_REASONS | {"HTTP_409"}


def describe(code: str | None) -> Reason:
    """The reason for `code`. Only a known, payment-level code is permanent: an unknown or
    missing code is no verdict that the payment will never be made (so no cash fallback), and
    a duplicate means the bank holds the payment (ask for its status)."""
    if code is None:
        return Reason("Không rõ lý do / No reason given", False, "ambiguous")
    if code in DUPLICATE_CODES:
        known = REASONS.get(code)
        text = known.text if known else f"Mã lý do {code} / Reason code {code}"
        return Reason(text, False, "ambiguous")
    return REASONS.get(code, Reason(f"Mã lý do {code} / Reason code {code}", False, "ambiguous"))


def is_permanent(code: str | None) -> bool:
    return describe(code).permanent
