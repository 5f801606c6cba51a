"""The request bodies the sandbox reads."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, StrictInt, model_validator

from .population import MAX_CHECKS_PER_REQUEST


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


class PersonIn(BaseModel):
    """A person of the population registry, as seeded."""

    national_id: str = Field(pattern=r"^\d{12}$")
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    status: Literal["ALIVE", "DECEASED"] = "ALIVE"
    date_of_death: date | None = None

    @model_validator(mode="after")
    def _death_only_when_deceased(self) -> PersonIn:
        if self.status == "ALIVE" and self.date_of_death is not None:
            raise ValueError("a living person has no date of death")
        return self


class PersonList(BaseModel):
    persons: list[PersonIn]


class IdentityCheckIn(BaseModel):
    national_id: str = Field(pattern=r"^\d{12}$")
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date | None = None


class IdentityChecksIn(BaseModel):
    persons: list[IdentityCheckIn] = Field(min_length=1, max_length=MAX_CHECKS_PER_REQUEST)
