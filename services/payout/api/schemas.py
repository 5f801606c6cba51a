"""Request bodies of the payout API."""
from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from shared.events.contracts import PERIOD_PATTERN

COUNTERPARTY_PATTERN = r"^(\d{6}|VNPOST)$"


class StartCycle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=PERIOD_PATTERN, description="YYYY-MM, Vietnam time")


class StartReconciliation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counterparty: str = Field(pattern=COUNTERPARTY_PATTERN, description="a bank BIN or VNPOST")
    date: date
