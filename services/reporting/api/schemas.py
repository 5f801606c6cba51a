"""Request and response bodies of the reporting API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.contracts import PERIOD_PATTERN, Scheme

Dimension = Literal[
    "province", "district", "commune", "area-type", "scheme", "agency", "channel", "period"
]
SplitDimension = Literal["area-type", "scheme", "agency", "channel", "province", "district"]
AreaLevel = Literal["province", "district", "commune"]
AreaType = Literal["URBAN", "RURAL", "UNKNOWN"]
TargetAreaType = Literal["URBAN", "RURAL", "ALL"]
Status = Literal["REACHED", "ON_TRACK", "AT_RISK", "NO_DATA"]
SUPPRESSED_BELOW = "cells of fewer people are hidden for this reader (null: every cell shown)"
TEXT_PATTERN = r"^[^\x00]+$"  # any text but NUL, which PostgreSQL text cannot hold


class FiguresOut(BaseModel):
    """Counts of people are distinct people per period and scheme; over several periods they add
    up month by month (lượt người). Amounts are whole VND. A suppressed cell (fewer than 5 people,
    or hidden so that such a cell cannot be recovered by subtraction) has every figure null."""

    suppressed: bool = Field(
        False, description="figures hidden to protect the people of a small cell"
    )
    people_paid: int | None
    people_cashless: int | None
    cashless_share_percent: float | None = Field(
        description="people_cashless / people_paid, for display"
    )
    paid_count: int | None
    paid_amount: int | None
    cashless_count: int | None
    cashless_amount: int | None
    pending_count: int | None
    pending_amount: int | None
    failed_count: int | None
    failed_amount: int | None
    returned_count: int | None
    returned_amount: int | None
    cancelled_count: int | None
    cancelled_amount: int | None
    claims_received: int | None
    decisions_approved: int | None
    decisions_rejected: int | None
    decisions: int | None


class RowOut(FiguresOut):
    key: dict[str, str]
    code: str
    name_vi: str
    name_en: str
    area_type: str | None = None


class BreakdownOut(BaseModel):
    dimension: str
    filters: dict
    suppressed_below: int | None = Field(None, description=SUPPRESSED_BELOW)
    rows: list[RowOut]
    total: FiguresOut


class KpisOut(BaseModel):
    filters: dict
    suppressed_below: int | None = Field(None, description=SUPPRESSED_BELOW)
    figures: FiguresOut


class PointOut(FiguresOut):
    period: str


class SeriesOut(BaseModel):
    key: dict[str, str]
    code: str
    name_vi: str
    name_en: str
    points: list[PointOut]


class TimeseriesOut(BaseModel):
    split: str | None
    filters: dict
    suppressed_below: int | None = Field(None, description=SUPPRESSED_BELOW)
    periods: list[str]
    series: list[SeriesOut]


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title_vi: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)
    title_en: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)
    area_type: TargetAreaType
    area_level: AreaLevel = "province"
    area_code: str | None = Field(default=None, max_length=16, pattern=r"^[0-9A-Za-z]+$")
    schemes: list[Scheme] = Field(min_length=1)
    target_percent: Decimal = Field(gt=0, le=100, max_digits=5, decimal_places=2)
    deadline: date


class TargetOut(BaseModel):
    id: str
    code: str
    title_vi: str
    title_en: str
    area_type: str
    area_level: str
    area_code: str | None
    schemes: list[str]
    target_percent: float
    deadline: date


class WindowPointOut(BaseModel):
    period: str
    people_paid: int
    people_cashless: int
    share_percent: float | None


class ProgressOut(BaseModel):
    target: TargetOut
    status: Status
    as_of: str
    period: str | None = Field(description="the latest complete period with figures")
    people_paid: int
    people_cashless: int
    share_percent: float | None
    gap_pp: float | None = Field(description="target minus current share, in percentage points")
    trend_pp_per_month: float | None = Field(
        description="least-squares slope over the last six periods"
    )
    projected_date: date | None = Field(description="when the trend line reaches the target")
    deadline_passed: bool
    window: list[WindowPointOut]


class ProgressListOut(BaseModel):
    as_of: str
    targets: list[ProgressOut]


class PeriodsOut(BaseModel):
    periods: list[str]
    default_period: str | None
    latest_complete: str


class FreshnessOut(BaseModel):
    generation: int
    state: str
    events_applied: int
    last_event_at: datetime | None
    last_applied_at: datetime | None
    lag_seconds: float | None = Field(
        description="from the newest applied event's time to its application"
    )
    rebuilt_at: datetime | None


class AreaOut(BaseModel):
    code: str
    name: str
    list_date: date
    district_code: str | None = None
    district_name: str | None = None
    area_type: str | None = None


class AreasOut(BaseModel):
    level: str
    list_date: date
    areas: list[AreaOut]


PeriodParam = Field(default=None, pattern=PERIOD_PATTERN)


class EnvelopeUseOut(BaseModel):
    """One agency's funds envelope for a scheme in the period and its use. Used = approved (the
    envelope is spent when a checker approves, as payout checks it); paid = settled or handed over
    in cash. Whole VND; a suppressed line (fewer than 5 installments or people, for a reader without
    the detail scope) shows its envelope only."""

    period: str
    agency: str
    agency_name_vi: str
    agency_name_en: str
    scheme: str
    scheme_name_vi: str
    scheme_name_en: str
    envelope: int | None = Field(description="the latest budget loaded (null: none loaded)")
    suppressed: bool
    approved: int | None = Field(description="sum of the approved cycle totals")
    approved_count: int | None = Field(description="installments approved")
    approvals: int | None = Field(description="approvals counted")
    paid: int | None
    remaining: int | None = Field(description="envelope − approved; negative when over")
    over: bool | None
    percent_used: float | None = Field(description="approved / envelope, for display")
    percent_paid: float | None = Field(description="paid / envelope, for display")


class EnvelopesOut(BaseModel):
    period: str | None = Field(description="the period shown (default: the latest with envelopes)")
    periods: list[str] = Field(description="periods with an envelope or an approval")
    suppressed_below: int | None = Field(description=SUPPRESSED_BELOW)
    rows: list[EnvelopeUseOut]
