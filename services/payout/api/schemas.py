"""Request bodies of the payout API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

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
