"""Unit tests of the intake domain: no database, no framework."""

from __future__ import annotations

from datetime import date

import pytest

from services.intake.domain import claims as claim_rules
from services.intake.domain import payment_methods as pm
from services.intake.domain.entitlements import ACTIVE, STOPPED, check_stop
from services.intake.domain.errors import Conflict, Invalid, RuleBroken
from services.intake.domain.identity import (
    PROVINCE_CODES,
    cccd_problems,
    century_and_sex,
    is_valid_cccd,
    mask_account,
    mask_national_id,
    name_problems,
    sex_of,
)
from services.intake.domain.schedules import Schedule, schedule_problems
from services.intake.domain.unemployment import NotEligible, benefit_months, unemployment_benefit
from shared.periods import add_months


class TestCccd:
    def test_valid_vinh_phuc_male_born_1990(self):
        assert is_valid_cccd("026090001234", date(1990, 5, 1))
        assert sex_of("026090001234") == "MALE"

    def test_female_born_2003_uses_digit_3(self):
        assert is_valid_cccd("026303004567", date(2003, 1, 1))
        assert sex_of("026303004567") == "FEMALE"

    @pytest.mark.parametrize(
        "digit,century,sex",
        [
            (0, 1900, "MALE"),
            (1, 1900, "FEMALE"),
            (2, 2000, "MALE"),
            (3, 2000, "FEMALE"),
            (4, 2100, "MALE"),
            (5, 2100, "FEMALE"),
            (9, 2300, "FEMALE"),
        ],
    )
    def test_century_and_sex_digit(self, digit, century, sex):
        assert century_and_sex(digit) == (century, sex)

    def test_province_codes_are_the_63_provinces(self):
        assert len(PROVINCE_CODES) == 63
        assert PROVINCE_CODES["026"] == "Vĩnh Phúc"
        assert min(PROVINCE_CODES) == "001" and max(PROVINCE_CODES) == "096"

    @pytest.mark.parametrize(
        "value", ["02609000123", "0260900012345", "02609000123A", "", "026 90001234"]
    )
    def test_wrong_length_or_characters(self, value):
        assert cccd_problems(value) == ["must be 12 digits"]

    def test_unknown_province(self):
        assert cccd_problems("003090001234") == ["province code 003 is not a province code"]
        assert cccd_problems("097090001234")

    def test_century_digit_must_match_date_of_birth(self):
        [problem] = cccd_problems("026290001234", date(1990, 5, 1))
        assert "century" in problem

    def test_year_digits_must_match_date_of_birth(self):
        [problem] = cccd_problems("026091001234", date(1990, 5, 1))
        assert "birth-year" in problem

    def test_masking_keeps_first_three_and_last_two(self):
        assert mask_national_id("026090001289") == "026*******89"
        assert mask_account("0123456789") == "****6789"
        assert mask_national_id(None) is None


class TestNames:
    def test_vietnamese_letters_accepted(self):
        assert name_problems("Nguyễn Thị Ánh Đào") == []

    @pytest.mark.parametrize("value", ["A", "Nguyễn Văn 3", "Lê <script>"])
    def test_rejected(self, value):
        assert name_problems(value)


class TestUnemploymentRule:
    def test_sixty_percent_of_the_average(self):
        benefit = unemployment_benefit(8_000_000, 24, "II", contract_ended_on=date(2023, 5, 1))
        assert benefit.monthly_amount == 4_800_000 and benefit.months == 3 and not benefit.capped

    def test_rounded_down_to_the_dong(self):
        assert (
            unemployment_benefit(
                7_777_777, 12, "I", contract_ended_on=date(2023, 5, 1)
            ).monthly_amount
            == 4_666_666
        )

    @pytest.mark.parametrize(
        "region,cap",
        [("I", 23_400_000), ("II", 20_800_000), ("III", 18_200_000), ("IV", 16_250_000)],
    )
    def test_capped_at_five_regional_minimum_wages(self, region, cap):
        benefit = unemployment_benefit(100_000_000, 36, region, contract_ended_on=date(2023, 5, 1))
        assert benefit.monthly_amount == cap and benefit.capped

    @pytest.mark.parametrize(
        "months,duration", [(12, 3), (36, 3), (47, 3), (48, 4), (60, 5), (144, 12), (400, 12)]
    )
    def test_duration(self, months, duration):
        assert benefit_months(months) == duration

    def test_under_twelve_months_not_eligible(self):
        with pytest.raises(NotEligible):
            benefit_months(11)

    def test_amounts_are_integers(self):
        assert isinstance(
            unemployment_benefit(
                5_123_457, 20, "III", contract_ended_on=date(2023, 5, 1)
            ).monthly_amount,
            int,
        )


def _approval(**kw) -> claim_rules.Approval:
    base = {
        "agency": "BHXH",
        "decision_number": "QD-1",
        "amount_per_installment": 4_800_000,
        "schedule": Schedule("FIXED_MONTHLY", "2023-05", 4),
        "average_salary": 8_000_000,
        "contribution_months": 50,
        "region": "II",
    }
    base.update(kw)
    return claim_rules.Approval(**base)


class TestClaimStateMachine:
    def test_received_can_be_approved_or_rejected(self):
        assert claim_rules.next_status("RECEIVED", "APPROVED") == "APPROVED"
        assert claim_rules.next_status("RECEIVED", "REJECTED") == "REJECTED"

    @pytest.mark.parametrize("decided", ["APPROVED", "REJECTED"])
    @pytest.mark.parametrize("outcome", ["APPROVED", "REJECTED"])
    def test_decided_once(self, decided, outcome):
        with pytest.raises(Conflict):
            claim_rules.next_status(decided, outcome)

    def test_unemployment_approval_following_the_rule_passes(self):
        claim_rules.check_approval("UNEMPLOYMENT", _approval())

    def test_unemployment_amount_off_by_one_dong_is_refused(self):
        with pytest.raises(RuleBroken) as caught:
            claim_rules.check_approval("UNEMPLOYMENT", _approval(amount_per_installment=4_800_001))
        assert [e.pointer for e in caught.value.errors] == ["/amount_per_installment"]

    def test_unemployment_duration_must_follow_contributions(self):
        with pytest.raises(RuleBroken) as caught:
            claim_rules.check_approval(
                "UNEMPLOYMENT", _approval(schedule=Schedule("FIXED_MONTHLY", "2023-05", 6))
            )
        assert caught.value.extensions["expected"] == {
            "amount_per_installment": 4_800_000,
            "installments": 4,
        }

    def test_unemployment_needs_the_salary_facts(self):
        with pytest.raises(RuleBroken) as caught:
            claim_rules.check_approval("UNEMPLOYMENT", _approval(average_salary=None, region=None))
        assert {e.pointer for e in caught.value.errors} == {"/average_salary", "/region"}

    def test_wrong_agency_refused(self):
        with pytest.raises(RuleBroken) as caught:
            claim_rules.check_approval(
                "PENSION", _approval(agency="DOLISA", schedule=Schedule("OPEN_MONTHLY", "2023-05"))
            )
        assert caught.value.errors[0].pointer == "/agency"

    def test_schedule_consistency(self):
        assert schedule_problems("ONE_OFF", "2023-05", 2)
        assert schedule_problems("FIXED_MONTHLY", "2023-05", None)
        assert schedule_problems("OPEN_MONTHLY", "2023-05", 3)
        assert schedule_problems("OPEN_MONTHLY", "2023-13", None)
        assert schedule_problems("FIXED_MONTHLY", "2023-05", 3) == []


class TestStops:
    def test_stop_within_the_schedule(self):
        assert (
            check_stop(ACTIVE, Schedule("FIXED_MONTHLY", "2023-05", 4), "RETURN_TO_WORK", "2023-07")
            is True
        )

    def test_stop_after_the_last_installment_is_refused(self):
        with pytest.raises(Invalid):
            check_stop(ACTIVE, Schedule("FIXED_MONTHLY", "2023-05", 4), "RETURN_TO_WORK", "2023-09")

    def test_repeated_stop_is_a_no_op_and_a_different_one_conflicts(self):
        schedule = Schedule("OPEN_MONTHLY", "2020-01")
        assert check_stop(STOPPED, schedule, "DEATH", "2024-02", "DEATH", "2024-02") is False
        with pytest.raises(Conflict):
            check_stop(STOPPED, schedule, "DEATH", "2024-03", "DEATH", "2024-02")

    def test_periods(self):
        assert add_months("2023-11", 3) == "2024-02"
        assert Schedule("FIXED_MONTHLY", "2023-11", 3).last_period == "2024-01"
        assert Schedule("OPEN_MONTHLY", "2023-11").last_period is None


def _rep(**kw) -> pm.RepresentativeSpec:
    base = {
        "national_id": "026185001122",
        "full_name": "Trần Thị Hoa",
        "relationship": "con",
        "power_of_attorney_ref": "UQ-2023-15",
        "valid_from": date(2023, 1, 1),
        "valid_until": date(2023, 12, 31),
    }
    base.update(kw)
    return pm.RepresentativeSpec(**base)


class TestAuthorisation:
    def test_validity_window(self):
        rep = _rep()
        assert pm.authorisation_state(rep, date(2022, 12, 31)) == pm.NOT_YET_VALID
        assert pm.authorisation_state(rep, date(2023, 1, 1)) == "VALID"
        assert pm.authorisation_state(rep, date(2023, 12, 31)) == "VALID"
        assert pm.authorisation_state(rep, date(2024, 1, 1)) == pm.EXPIRED
        assert pm.authorisation_state(_rep(valid_until=None), date(2040, 1, 1)) == "VALID"

    def test_an_expired_authorisation_stops_being_used(self):
        rep = _rep()
        assert pm.usable_for_payment(pm.AUTHORISED_ACCOUNT, pm.VERIFIED, rep, date(2023, 6, 1))
        assert (
            pm.effective_status(pm.AUTHORISED_ACCOUNT, pm.VERIFIED, rep, date(2024, 1, 1))
            == pm.EXPIRED
        )
        assert not pm.usable_for_payment(pm.AUTHORISED_ACCOUNT, pm.VERIFIED, rep, date(2024, 1, 1))

    def test_only_verified_methods_pay(self):
        assert not pm.usable_for_payment(
            pm.OWN_ACCOUNT, pm.PENDING_VERIFICATION, None, date(2023, 6, 1)
        )
        assert (
            pm.MethodSpec(
                pm.CASH_POST_OFFICE, cash_reason="bedridden, no one to authorise"
            ).initial_status()
            == pm.VERIFIED
        )
        assert (
            pm.MethodSpec(pm.OWN_ACCOUNT, "970436", "0123456789").initial_status()
            == pm.PENDING_VERIFICATION
        )

    def test_registering_an_already_expired_authorisation_is_refused(self):
        spec = pm.MethodSpec(pm.AUTHORISED_ACCOUNT, "970436", "0123456789", _rep())
        problems = pm.method_problems(spec, date(2024, 2, 1), "026090001234")
        assert [p.pointer for p in problems] == ["/representative/valid_until"]

    def test_representative_cannot_be_the_beneficiary(self):
        spec = pm.MethodSpec(pm.AUTHORISED_ACCOUNT, "970436", "0123456789", _rep(valid_until=None))
        problems = pm.method_problems(spec, date(2023, 6, 1), "026185001122")
        assert [p.pointer for p in problems] == ["/representative/national_id"]

    def test_cash_needs_a_reason_and_no_account(self):
        problems = pm.method_problems(
            pm.MethodSpec(pm.CASH_POST_OFFICE, "970436"), date(2023, 6, 1)
        )
        assert {p.pointer for p in problems} == {"/bank_bin", "/cash_reason"}

    def test_unknown_bank_and_bad_account(self):
        problems = pm.method_problems(
            pm.MethodSpec(pm.OWN_ACCOUNT, "123456", "12-34"), date(2023, 6, 1)
        )
        assert {p.pointer for p in problems} == {"/bank_bin", "/account_number"}

    def test_holder_name_is_the_representatives_for_an_authorised_account(self):
        spec = pm.MethodSpec(pm.AUTHORISED_ACCOUNT, "970436", "0123456789", _rep())
        assert spec.holder_name("Nguyễn Văn An") == "Trần Thị Hoa"
        assert (
            pm.MethodSpec(pm.OWN_ACCOUNT, "970436", "1").holder_name("Nguyễn Văn An")
            == "Nguyễn Văn An"
        )
