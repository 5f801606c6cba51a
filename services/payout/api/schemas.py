"""Request bodies of the payout API."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events.contracts import MAX_VND_TOTAL

COUNTERPARTY_PATTERN = r"^(\d{6}|VNPOST)$"
# A cycle's period: YYYY-MM in this century (its first and last days and the next period must exist).
CYCLE_PERIOD_PATTERN = r"^20\d{2}-(0[1-9]|1[0-2])$"


class StartCycle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=CYCLE_PERIOD_PATTERN, description="YYYY-MM, Vietnam time")


class StartReconciliation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counterparty: str = Field(pattern=COUNTERPARTY_PATTERN, description="a bank BIN or VNPOST")
    date: date


AGENCY_PATTERN = r"^(BHXH|DOLISA|ESC)$"
SCHEME_PATTERN = r"^[A-Z][A-Z_]{0,31}$"
DIGEST_PATTERN = r"^[0-9a-f]{64}$"


class Approve(BaseModel):
    """A checker's decision on what awaits approval for an agency, by the digest shown."""

    model_config = ConfigDict(extra="forbid")

    agency: str | None = Field(
        default=None, pattern=AGENCY_PATTERN, description="default: the caller's agency"
    )
    digest: str = Field(pattern=DIGEST_PATTERN, description="the digest GET /v1/cycles showed")
    decision: Literal["APPROVE", "REJECT"] = "APPROVE"
    reason: str | None = Field(default=None, max_length=500, description="required to reject")


class EnvelopeRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=CYCLE_PERIOD_PATTERN)
    agency: str = Field(pattern=AGENCY_PATTERN)
    scheme: str = Field(pattern=SCHEME_PATTERN)
    amount: int = Field(ge=0, le=MAX_VND_TOTAL, description="whole đồng")


class SetEnvelopes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    envelopes: list[EnvelopeRow] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_row_per_key(self) -> SetEnvelopes:
        keys = [(e.period, e.agency, e.scheme) for e in self.envelopes]
        if len(set(keys)) != len(keys):
            raise ValueError("an envelope (period, agency, scheme) is given twice")
        return self


class CalendarEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pay_date: date
    periods: list[str] = Field(min_length=1, max_length=12)
    prepare_on: date

    @field_validator("periods")
    @classmethod
    def _periods(cls, periods: list[str]) -> list[str]:
        for period in periods:
            if not re.match(CYCLE_PERIOD_PATTERN, period):
                raise ValueError("a period is written YYYY-MM")
        if len(set(periods)) != len(periods):
            raise ValueError("a period is listed twice")
        return periods

    @model_validator(mode="after")
    def _prepared_before_paid(self) -> CalendarEntry:
        if self.prepare_on > self.pay_date:
            raise ValueError("prepare_on comes after pay_date")
        return self


class SetCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[CalendarEntry] = Field(min_length=1, max_length=120)

    @model_validator(mode="after")
    def _a_period_once(self) -> SetCalendar:
        periods = [p for e in self.entries for p in e.periods]
        if len(set(periods)) != len(periods):
            raise ValueError("a period is in two entries")
        return self
