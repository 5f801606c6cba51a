"""Payment channels of the payout service: banks (NAPAS-style JSON or ISO 20022 files) and the
post office, behind one interface (`BankChannel`), chosen per counterparty by the registry."""

from .base import (
    DUPLICATE_CODES,
    REASONS,
    VNPOST,
    BankChannel,
    BankError,
    CallbackRejected,
    CredentialsRefused,
    NameInquiryResult,
    PaymentBatch,
    PaymentInstruction,
    PaymentOutcome,
    PaymentStatus,
    PermanentBankError,
    Reason,
    StatementEntry,
    SubmitResult,
    TransientBankError,
    UnknownOutcome,
    describe,
    is_permanent,
)
from .iso20022 import Debtor, Iso20022Channel, PaymentStatusReport, build_pain001
from .napas import NapasChannel
from .registry import BankChannelRegistry, BankChannelSettings
from .vnpost import VnpostChannel

__all__ = [
    "DUPLICATE_CODES",
    "REASONS",
    "VNPOST",
    "BankChannel",
    "BankChannelRegistry",
    "BankChannelSettings",
    "BankError",
    "CallbackRejected",
    "CredentialsRefused",
    "Debtor",
    "Iso20022Channel",
    "NameInquiryResult",
    "NapasChannel",
    "PaymentBatch",
    "PaymentInstruction",
    "PaymentOutcome",
    "PaymentStatus",
    "PaymentStatusReport",
    "PermanentBankError",
    "Reason",
    "StatementEntry",
    "SubmitResult",
    "TransientBankError",
    "UnknownOutcome",
    "VnpostChannel",
    "build_pain001",
    "describe",
    "is_permanent",
]
