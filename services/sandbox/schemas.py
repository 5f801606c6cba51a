"""The request bodies the sandbox reads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictInt


class NameInquiryIn(BaseModel):
    account_number: str = Field(min_length=1, max_length=34)


class TransferIn(BaseModel):
    end_to_end_id: str = Field(min_length=1, max_length=64)
    account_number: str = Field(min_length=1, max_length=34)
    account_name: str = ""
    amount: StrictInt
    currency: str = "VND"
    remittance_info: str = ""


class TransferBatchIn(BaseModel):
    batch_id: str = Field(min_length=1, max_length=64)
    control_count: StrictInt
    control_sum: StrictInt
    transfers: list[TransferIn]


class CashItemIn(BaseModel):
    end_to_end_id: str = Field(min_length=1, max_length=64)
    beneficiary_name: str = ""
    amount: StrictInt
    commune_code: str = Field(min_length=1)
    remittance_info: str = ""


class CashListIn(BaseModel):
    list_id: str = Field(min_length=1, max_length=80)
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    commune_code: str = Field(min_length=1)
    control_count: StrictInt
    control_sum: StrictInt
    items: list[CashItemIn]


class AccountIn(BaseModel):
    bin: str = Field(pattern=r"^\d{6}$")
    account_number: str = Field(min_length=1, max_length=34)
    holder_name: str = Field(min_length=1)
    status: Literal["ACTIVE", "CLOSED", "BLOCKED", "DECEASED"] = "ACTIVE"


class CashOutcomeIn(BaseModel):
    end_to_end_id: str = Field(min_length=1)
    outcome: Literal["PAID", "PENDING", "NOT_FOUND", "REFUSED", "DECEASED"]


class ReturnIn(BaseModel):
    reason_code: str = Field("AC04", min_length=2, max_length=35)


class AccountList(BaseModel):
    accounts: list[AccountIn]


class CashOutcomeList(BaseModel):
    outcomes: list[CashOutcomeIn]
