"""Claims and decisions: the claim's state machine and the rules a decision must follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.intake.domain.errors import Conflict, FieldError, RuleBroken
from services.intake.domain.schedules import Schedule, schedule_problems
from services.intake.domain.schemes import agency_for
from services.intake.domain.unemployment import (
    ENTERPRISE,
    NotEligible,
    NoWageInForce,
    SalaryRegime,
    unemployment_benefit,
)

RECEIVED = "RECEIVED"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
CLAIM_STATUSES = (RECEIVED, APPROVED, REJECTED)
# A claim is decided once: RECEIVED -> APPROVED | REJECTED, and nothing after that.
TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({APPROVED, REJECTED}),
    APPROVED: frozenset(),
    REJECTED: frozenset(),
}


def next_status(current: str, outcome: str) -> str:
    if outcome not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(
            f"the claim is already {current.lower()}: a claim is decided once", claim_status=current
        )
    return outcome


@dataclass(frozen=True, slots=True)
class Approval:
    agency: str
    decision_number: str
    amount_per_installment: int
    schedule: Schedule
    average_salary: int | None = None
    contribution_months: int | None = None
    region: str | None = None
    # UNEMPLOYMENT: the cap follows the wages in force when the contract ended (the benefit's
    # first month when not given) and the person's salary regime.
    contract_ended_on: date | None = None
    salary_regime: SalaryRegime = ENTERPRISE


@dataclass(frozen=True, slots=True)
class Rejection:
    agency: str
    reason_code: str
    reason_text: str
    decision_number: str | None = None


def agency_problems(scheme: str, agency: str) -> list[FieldError]:
    expected = agency_for(scheme)
    if agency != expected:
        return [FieldError("/agency", f"{scheme} claims are decided by {expected}, not {agency}")]
    return []


def check_approval(scheme: str, approval: Approval) -> None:
    """Refuse an approval whose agency, schedule or amount breaks the scheme's rules."""
    errors = agency_problems(scheme, approval.agency)
    for field, reason in schedule_problems(
        approval.schedule.kind, approval.schedule.start_period, approval.schedule.installments
    ):
        errors.append(FieldError(f"/schedule/{field}", reason))
    if approval.amount_per_installment <= 0:
        errors.append(
            FieldError("/amount_per_installment", "must be a positive whole number of VND")
        )
    if errors:
        raise RuleBroken(errors, "the decision is not consistent")
    if scheme == "UNEMPLOYMENT":
        check_unemployment(approval)


def check_unemployment(approval: Approval) -> None:
    missing = [
        FieldError(f"/{name}", "is required to approve an unemployment claim")
        for name in ("average_salary", "contribution_months", "region")
        if getattr(approval, name) is None
    ]
    if missing:
        raise RuleBroken(
            missing, "an unemployment decision must give the salary, contributions and region"
        )
    assert approval.average_salary is not None and approval.contribution_months is not None
    assert approval.region is not None
    start = approval.schedule.start_period
    ended_on = approval.contract_ended_on or date(int(start[:4]), int(start[5:7]), 1)
    try:
        rule = unemployment_benefit(
            approval.average_salary,
            approval.contribution_months,
            approval.region,
            contract_ended_on=ended_on,
            regime=approval.salary_regime,
        )
    except NoWageInForce as exc:
        raise RuleBroken(
            [FieldError("/contract_ended_on", str(exc))], "the unemployment rule cannot apply"
        ) from exc
    except NotEligible as exc:
        raise RuleBroken(
            [FieldError("/contribution_months", str(exc))], "not eligible for unemployment benefit"
        ) from exc
    except ValueError as exc:
        raise RuleBroken(
            [FieldError("/average_salary", str(exc))], "the unemployment rule cannot apply"
        ) from exc
    errors = []
    if approval.amount_per_installment != rule.monthly_amount:
        cap = f" (the cap of {rule.cap})" if rule.capped else ""
        ceiling = (
            "the base salary"
            if approval.salary_regime != ENTERPRISE
            else f"the region {approval.region} minimum wage"
        )
        errors.append(
            FieldError(
                "/amount_per_installment",
                f"the rule gives {rule.monthly_amount} VND a month{cap}: 60% of {approval.average_salary}, "
                f"at most 5 x {ceiling} in force on {ended_on.isoformat()}",
            )
        )
    if approval.schedule.kind != "FIXED_MONTHLY" or approval.schedule.installments != rule.months:
        errors.append(
            FieldError(
                "/schedule/installments",
                f"the rule gives {rule.months} monthly installments for {approval.contribution_months} months of contributions",
            )
        )
    if errors:
        raise RuleBroken(
            errors,
            "the decision breaks the unemployment rule",
            expected={
                "amount_per_installment": rule.monthly_amount,
                "installments": rule.months,
            },
        )
