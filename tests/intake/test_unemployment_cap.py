"""The unemployment cap follows the wages in force when the contract ended and the person's
salary regime: 5 x the regional minimum wage (salary set by the employer) or 5 x the base salary
(state salary scale)."""

from __future__ import annotations

from datetime import date

import pytest

from services.intake.domain import claims as claim_rules
from services.intake.domain.errors import RuleBroken
from services.intake.domain.schedules import Schedule
from services.intake.domain.unemployment import NoWageInForce, benefit_cap, unemployment_benefit
from tests.intake import builders

RICH = 100_000_000  # 60% of it is over every cap


class TestRegionalCapByDate:
    @pytest.mark.parametrize(
        "region,before,after",
        [
            ("I", 4_680_000, 4_960_000),
            ("II", 4_160_000, 4_410_000),
            ("III", 3_640_000, 3_860_000),
            ("IV", 3_250_000, 3_450_000),
        ],
    )
    def test_minimum_wage_of_july_2024_applies_from_its_first_day(self, region, before, after):
        on_30_june = unemployment_benefit(RICH, 36, region, contract_ended_on=date(2024, 6, 30))
        on_1_july = unemployment_benefit(RICH, 36, region, contract_ended_on=date(2024, 7, 1))
        assert on_30_june.monthly_amount == 5 * before and on_30_june.capped
        assert on_1_july.monthly_amount == 5 * after and on_1_july.capped

    def test_minimum_wage_of_july_2022_applies_from_its_first_day(self):
        assert benefit_cap("II", date(2022, 7, 1)) == 5 * 4_160_000
        assert benefit_cap("II", date(2022, 6, 30)) == 5 * 3_920_000

    def test_a_date_before_any_known_wage_is_refused(self):
        with pytest.raises(NoWageInForce):
            benefit_cap("I", date(2019, 12, 31))


class TestStateSalaryScaleCap:
    @pytest.mark.parametrize(
        "ended_on,base",
        [
            (date(2023, 6, 30), 1_490_000),
            (date(2023, 7, 1), 1_800_000),
            (date(2024, 6, 30), 1_800_000),
            (date(2024, 7, 1), 2_340_000),
        ],
    )
    def test_capped_at_five_base_salaries_in_force(self, ended_on, base):
        benefit = unemployment_benefit(RICH, 36, "I", contract_ended_on=ended_on, regime="STATE")
        assert benefit.monthly_amount == 5 * base and benefit.capped

    def test_state_regime_cap_is_lower_than_the_regional_one(self):
        # 60% of 20,000,000 = 12,000,000: under region I's 24,800,000, over 5 x 2,340,000.
        enterprise = unemployment_benefit(20_000_000, 36, "I", contract_ended_on=date(2024, 8, 1))
        state = unemployment_benefit(
            20_000_000, 36, "I", contract_ended_on=date(2024, 8, 1), regime="STATE"
        )
        assert enterprise.monthly_amount == 12_000_000 and not enterprise.capped
        assert state.monthly_amount == 11_700_000 and state.capped


def _approval(**kw) -> claim_rules.Approval:
    base = {
        "agency": "BHXH",
        "decision_number": "QD-1",
        "amount_per_installment": 22_050_000,
        "schedule": Schedule("FIXED_MONTHLY", "2024-09", 3),
        "average_salary": RICH,
        "contribution_months": 30,
        "region": "II",
        "contract_ended_on": date(2024, 8, 15),
    }
    base.update(kw)
    return claim_rules.Approval(**base)


class TestDecisionFollowsTheCapInForce:
    def test_contract_ended_after_july_2024_uses_the_new_region_ii_wage(self):
        claim_rules.check_approval("UNEMPLOYMENT", _approval())

    def test_the_old_cap_is_refused_for_a_contract_ended_after_july_2024(self):
        with pytest.raises(RuleBroken) as caught:
            claim_rules.check_approval("UNEMPLOYMENT", _approval(amount_per_installment=20_800_000))
        assert caught.value.extensions["expected"] == {
            "amount_per_installment": 22_050_000,
            "installments": 3,
        }

    def test_state_salary_scale_uses_the_base_salary(self):
        claim_rules.check_approval(
            "UNEMPLOYMENT", _approval(salary_regime="STATE", amount_per_installment=11_700_000)
        )
        with pytest.raises(RuleBroken):
            claim_rules.check_approval("UNEMPLOYMENT", _approval(salary_regime="STATE"))

    def test_without_the_contract_end_the_benefits_first_month_decides(self):
        claim_rules.check_approval("UNEMPLOYMENT", _approval(contract_ended_on=None))
        with pytest.raises(RuleBroken):
            claim_rules.check_approval(
                "UNEMPLOYMENT",
                _approval(contract_ended_on=None, schedule=Schedule("FIXED_MONTHLY", "2024-06", 3)),
            )


class TestDecisionApi:
    async def test_state_salary_scale_decision_is_checked_against_the_base_salary(self, intake):
        filed = await intake.post("/v1/claims", "portal", json=builders.claim())
        assert filed.status_code == 201, filed.text
        claim_id = filed.json()["claim_id"]
        schedule = {"kind": "FIXED_MONTHLY", "start_period": "2024-09", "installments": 3}
        wrong = builders.unemployment_approval(
            average_salary=RICH,
            contribution_months=30,
            schedule=schedule,
            amount_per_installment=22_050_000,
            salary_regime="STATE",
            contract_ended_on="2024-08-15",
        )
        refused = await intake.post(f"/v1/claims/{claim_id}/decision", "bhxh", json=wrong)
        assert refused.status_code == 422, refused.text
        assert refused.json()["expected"] == {
            "amount_per_installment": 11_700_000,
            "installments": 3,
        }
        right = {**wrong, "amount_per_installment": 11_700_000}
        approved = await intake.post(f"/v1/claims/{claim_id}/decision", "bhxh", json=right)
        assert approved.status_code == 200, approved.text
        bad_regime = await intake.post(
            f"/v1/claims/{claim_id}/decision", "bhxh", json={**right, "salary_regime": "PUBLIC"}
        )
        assert bad_regime.status_code == 422
