"""The unemployment benefit rule, asked: what a decision on an unemployment claim must grant
for these facts (the amount a month, the months, the cap and whether it applied). The same
rule `POST /v1/claims/{id}/decision` enforces; the officers' console shows it before deciding."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from services.intake.api.common import dumps, json_response, scopes
from services.intake.domain.errors import FieldError, Invalid
from services.intake.domain.unemployment import (
    BASE_CONTRIBUTION_MONTHS,
    BASE_MONTHS,
    CAP_MULTIPLE,
    MAX_MONTHS,
    RATE_PERCENT,
    NotEligible,
    NoWageInForce,
    base_salary,
    regional_minimum_wage,
    unemployment_benefit,
)
from shared.auth import Principal
from shared.web import problem_responses

router = APIRouter(tags=["claims"])


@router.get(
    "/v1/unemployment/benefit",
    summary="What the unemployment rule grants for a salary, contributions, region and date",
    responses=problem_responses(401, 403, 422),
)
async def benefit(
    average_salary: Annotated[int, Query(ge=1, le=10**12)],
    contribution_months: Annotated[int, Query(ge=0, le=1200)],
    region: Literal["I", "II", "III", "IV"],
    contract_ended_on: date,
    salary_regime: Literal["ENTERPRISE", "STATE"] = "ENTERPRISE",
    _: Principal = Depends(scopes("claims:read")),
) -> Response:
    try:
        rule = unemployment_benefit(
            average_salary,
            contribution_months,
            region,
            contract_ended_on=contract_ended_on,
            regime=salary_regime,
        )
    except NotEligible as exc:
        raise Invalid([FieldError("/contribution_months", str(exc))]) from None
    except NoWageInForce as exc:
        raise Invalid([FieldError("/contract_ended_on", str(exc))]) from None
    ceiling = (
        base_salary(contract_ended_on)
        if salary_regime == "STATE"
        else regional_minimum_wage(region, contract_ended_on)
    )
    return json_response(
        dumps(
            {
                "monthly_amount": rule.monthly_amount,
                "months": rule.months,
                "total": rule.total,
                "capped": rule.capped,
                "cap": rule.cap,
                "basis": {
                    "rate_percent": RATE_PERCENT,
                    "share_of_salary": average_salary * RATE_PERCENT // 100,
                    "cap_multiple": CAP_MULTIPLE,
                    "ceiling": ceiling,
                    "ceiling_kind": "BASE_SALARY"
                    if salary_regime == "STATE"
                    else "REGIONAL_MINIMUM_WAGE",
                    "base_months": BASE_MONTHS,
                    "base_contribution_months": BASE_CONTRIBUTION_MONTHS,
                    "max_months": MAX_MONTHS,
                },
                "schedule": {"kind": "FIXED_MONTHLY", "installments": rule.months},
            }
        )
    )
