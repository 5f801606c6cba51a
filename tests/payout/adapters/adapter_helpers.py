"""Builders shared by the bank adapter tests."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

from services.payout.adapters.banks import BankChannelSettings, PaymentBatch, PaymentInstruction

VCB = "970436"  # Vietcombank, signs with a configured secret
BIDV = "970418"
AGRIBANK = "970405"  # ISO 20022 file bank
VCB_SECRET = "vcb-shared-secret-for-tests"


def new_id(prefix: str = "E") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20].upper()}"


def instruction(
    account_number: str | None,
    amount: int,
    *,
    bin_: str | None = VCB,
    name: str = "Nguyễn Văn An",
    commune_code: str | None = None,
    e2e: str | None = None,
) -> PaymentInstruction:
    return PaymentInstruction(
        end_to_end_id=e2e or new_id(),
        amount=amount,
        account_number=account_number,
        account_name=name,
        bank_bin=bin_,
        commune_code=commune_code,
        remittance_info="Lương hưu tháng 05/2023",
    )


def batch_of(
    counterparty: str, items: list[PaymentInstruction], **overrides: object
) -> PaymentBatch:
    batch = PaymentBatch.of(new_id("B"), counterparty, items, date(2023, 5, 5))
    return dataclasses.replace(batch, **overrides) if overrides else batch  # type: ignore[arg-type]


def adapter_settings(base_url: str, **overrides: object) -> BankChannelSettings:
    return BankChannelSettings(
        base_url=base_url,
        webhook_secrets={VCB: VCB_SECRET},
        iso_bins=[AGRIBANK],
        debtor_name="Bảo hiểm xã hội tỉnh Vĩnh Phúc",
        debtor_account="3600201001234",
        initiating_party_id="BHXH26",
        **overrides,  # type: ignore[arg-type]
    )
