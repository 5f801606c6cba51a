"""Request bodies of the intake API (pydantic): shapes and types only; the rules are the domain's."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.intake.domain import payment_methods as pm
from shared.events.contracts import (
    AccountNumber,
    Agency,
    BankBin,
    CashReason,
    CommuneCode,
    DecisionNumber,
    InstallmentCount,
    PaymentMethodKind,
    Period,
    PersonName,
    PortalDossierId,
    ReasonCode,
    ReasonText,
    Scheme,
    Vnd,
)


class Strict(BaseModel):
    """Every field that ends up in an event takes its limits from the event contract."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RepresentativeIn(Strict):
    national_id: str = Field(max_length=12, description="the representative's CCCD (12 digits)")
    full_name: PersonName
    relationship: str = Field(max_length=100, description="e.g. con (child), vợ/chồng (spouse)")
    power_of_attorney_ref: str = Field(
        max_length=100, description="reference of the power of attorney"
    )
    valid_from: date
    valid_until: date | None = None


class PaymentMethodIn(Strict):
    method: PaymentMethodKind
    bank_bin: BankBin | None = Field(default=None, description="NAPAS BIN of the bank, 6 digits")
    account_number: AccountNumber | None = None
    representative: RepresentativeIn | None = None
    cash_reason: CashReason | None = Field(
        default=None,
        description="required for CASH_POST_OFFICE: cannot transact, no representative",
    )

    def spec(self) -> pm.MethodSpec:
        rep = self.representative
        return pm.MethodSpec(
            self.method,
            self.bank_bin,
            self.account_number,
            None
            if rep is None
            else pm.RepresentativeSpec(
                rep.national_id,
                rep.full_name,
                rep.relationship,
                rep.power_of_attorney_ref,
                rep.valid_from,
                rep.valid_until,
            ),
            self.cash_reason,
        )


class ApplicantIn(Strict):
    national_id: str = Field(max_length=12, description="CCCD: 12 digits")
    full_name: PersonName = Field(description="in Vietnamese; stored in NFC")
    date_of_birth: date
    si_number: str | None = Field(
        default=None,
        max_length=10,
        description="10-digit social-insurance number (PENSION, SI_ALLOWANCE, "
        "UNEMPLOYMENT, VOCATIONAL_TRAINING)",
    )


class AddressIn(Strict):
    commune_code: CommuneCode
    list_date: date = Field(description="date of the administrative list the code comes from")


class ClaimIn(Strict):
    portal_dossier_id: PortalDossierId = Field(pattern=r"^[A-Za-z0-9.\-_/]+$")
    scheme: Scheme
    applicant: ApplicantIn
    address: AddressIn
    payment: PaymentMethodIn


class ScheduleIn(Strict):
    kind: Literal["ONE_OFF", "FIXED_MONTHLY", "OPEN_MONTHLY"]
    start_period: Period
    installments: InstallmentCount | None = None


class ApprovalIn(Strict):
    outcome: Literal["APPROVED"]
    decision_number: DecisionNumber
    agency: Agency
    amount_per_installment: Vnd = Field(gt=0, description="whole VND")
    schedule: ScheduleIn
    average_salary: int | None = Field(
        default=None,
        gt=0,
        lt=10**11,
        description="UNEMPLOYMENT: average insured monthly salary of the last 6 months",
    )
    contribution_months: int | None = Field(default=None, ge=0, le=600, description="UNEMPLOYMENT")
    region: Literal["I", "II", "III", "IV"] | None = Field(
        default=None, description="UNEMPLOYMENT: wage region"
    )
    contract_ended_on: date | None = Field(
        default=None,
        description="UNEMPLOYMENT: the day the labour or working contract ended; the cap uses the "
        "minimum wage or base salary in force then (the benefit's first month when not given)",
    )
    salary_regime: Literal["ENTERPRISE", "STATE"] = Field(
        default="ENTERPRISE",
        description="UNEMPLOYMENT: ENTERPRISE (salary set by the employer: capped at 5 x the "
        "regional minimum wage) or STATE (state salary scale: capped at 5 x the base salary)",
    )


class RejectionIn(Strict):
    outcome: Literal["REJECTED"]
    agency: Agency
    reason_code: ReasonCode
    reason_text: ReasonText
    decision_number: DecisionNumber | None = None


DecisionIn = Annotated[ApprovalIn | RejectionIn, Field(discriminator="outcome")]


class StopIn(Strict):
    reason: Literal["DEATH", "RETURN_TO_WORK", "END_OF_ELIGIBILITY", "OTHER"]
    effective_period: Period = Field(description="the first period not paid")


class LookupIn(Strict):
    national_id: str = Field(pattern=r"^[0-9]{12}$", description="CCCD: 12 digits")
