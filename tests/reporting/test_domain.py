"""Pure rules of the read models: installment states, who counts where, claims, targets, areas."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from services.reporting.domain.areas import LIST_2025_07, list_in_force, reporting_area, source_area
from services.reporting.domain.model import (
    CANCELLED,
    FAILED,
    FAILED_PERMANENT,
    PAID_CASH,
    RETURNED,
    SCHEDULED,
    SETTLED,
    SUBMITTED,
    ClaimDecidedEvent,
    ClaimReceivedEvent,
    PaymentEvent,
    advance,
    decide_claim,
    person_cell,
    receive_claim,
)
from services.reporting.domain.targets import (
    AT_RISK,
    NO_DATA,
    ON_TRACK,
    REACHED,
    PeriodShare,
    Target,
    evaluate,
    least_squares_slope,
)
from shared import periods
from shared.admin_units import LIST_2023, LIST_2025

T0 = datetime(2023, 5, 10, 3, 0, tzinfo=UTC)


def payment(
    state: str,
    minute: int,
    *,
    installment: str = "i1",
    channel: str = "OWN_ACCOUNT",
    beneficiary: str = "b1",
    amount: int = 3_000_000,
) -> PaymentEvent:
    return PaymentEvent(
        installment,
        beneficiary,
        "2023-05",
        amount,
        "PENSION",
        "BHXH",
        channel,
        "08707",
        LIST_2023,
        state,
        T0 + timedelta(minutes=minute),
    )


def run(*events: PaymentEvent):
    fact = None
    for event in events:
        fact = advance(fact, event)
    return fact


class TestInstallmentStates:
    def test_the_usual_path_ends_settled(self):
        assert (
            run(payment(SCHEDULED, 0), payment(SUBMITTED, 1), payment(SETTLED, 2)).state == SETTLED
        )

    def test_an_older_event_arriving_late_changes_nothing(self):
        assert (
            run(payment(SETTLED, 2), payment(SUBMITTED, 1), payment(SCHEDULED, 0)).state == SETTLED
        )

    def test_a_settled_installment_never_goes_back_even_with_a_newer_event(self):
        assert (
            run(payment(SETTLED, 2), payment(FAILED_PERMANENT, 5), payment(SUBMITTED, 6)).state
            == SETTLED
        )

    def test_a_cash_handover_is_final(self):
        fact = run(payment(PAID_CASH, 2, channel="CASH_POST_OFFICE"), payment(RETURNED, 3))
        assert fact.state == PAID_CASH

    def test_a_return_undoes_a_settlement_and_a_later_payment_counts_again(self):
        assert run(payment(SETTLED, 2), payment(RETURNED, 3)).state == RETURNED
        fact = run(
            payment(SETTLED, 2),
            payment(RETURNED, 3),
            payment(PAID_CASH, 9, channel="CASH_POST_OFFICE"),
        )
        assert (fact.state, fact.channel) == (PAID_CASH, "CASH_POST_OFFICE")

    def test_a_transient_failure_then_a_retry_settles(self):
        assert (
            run(
                payment(SUBMITTED, 1),
                payment(FAILED, 2),
                payment(SUBMITTED, 3),
                payment(SETTLED, 4),
            ).state
            == SETTLED
        )

    def test_same_time_events_order_by_rank(self):
        assert run(payment(SETTLED, 2), payment(SUBMITTED, 2)).state == SETTLED
        assert run(payment(SUBMITTED, 2), payment(SETTLED, 2)).state == SETTLED

    def test_money_moved_after_a_cancellation_still_counts(self):
        assert run(payment(CANCELLED, 1), payment(SETTLED, 2)).state == SETTLED
        assert run(payment(CANCELLED, 1), payment(SUBMITTED, 2)).state == CANCELLED

    def test_a_settlement_stamped_before_the_recorded_submission_still_settles(self):
        # The bank's callback can beat payout's recording of its own submission.
        assert (
            run(payment(SCHEDULED, 0), payment(SUBMITTED, 5), payment(SETTLED, 4)).state == SETTLED
        )
        cash = run(
            payment(SCHEDULED, 0),
            payment(SUBMITTED, 5),
            payment(PAID_CASH, 1, channel="CASH_POST_OFFICE"),
        )
        assert cash.state == PAID_CASH

    def test_redelivering_the_same_event_returns_the_same_fact(self):
        fact = run(payment(SETTLED, 2))
        assert advance(fact, payment(SETTLED, 2)) is fact


class TestWhereAPersonCounts:
    def test_nobody_is_counted_before_a_payment(self):
        assert person_cell([run(payment(SUBMITTED, 1))]) is None

    def test_a_cashless_payment_wins_over_a_cash_one_in_the_same_period(self):
        cash = run(payment(PAID_CASH, 5, installment="i1", channel="CASH_POST_OFFICE"))
        bank = run(payment(SETTLED, 2, installment="i2", channel="AUTHORISED_ACCOUNT"))
        assert person_cell([cash, bank]).channel == "AUTHORISED_ACCOUNT"
        assert person_cell([bank, cash]).channel == "AUTHORISED_ACCOUNT"

    def test_a_returned_payment_no_longer_counts(self):
        assert person_cell([run(payment(SETTLED, 2), payment(RETURNED, 3))]) is None


class TestClaims:
    def received(self, minute: int) -> ClaimReceivedEvent:
        return ClaimReceivedEvent(
            "c1",
            "2022-03",
            "08707",
            LIST_2023,
            "UNEMPLOYMENT",
            "ESC",
            T0 + timedelta(minutes=minute),
        )

    def decided(self, minute: int, outcome: str) -> ClaimDecidedEvent:
        return ClaimDecidedEvent(
            "c1",
            "2022-04",
            "08707",
            LIST_2023,
            "UNEMPLOYMENT",
            "ESC",
            outcome,
            T0 + timedelta(minutes=minute),
        )

    def test_a_repeated_receipt_keeps_the_first(self):
        fact = receive_claim(None, self.received(5))
        assert receive_claim(fact, self.received(9)) is fact
        assert receive_claim(fact, self.received(1)).received_at == T0 + timedelta(minutes=1)

    def test_the_latest_decision_stands(self):
        fact = decide_claim(None, self.decided(5, "REJECTED"))
        fact = decide_claim(fact, self.decided(9, "APPROVED"))
        assert fact.outcome == "APPROVED"
        assert decide_claim(fact, self.decided(7, "REJECTED")).outcome == "APPROVED"


def target(bp: int = 2500, deadline: date = date(2023, 12, 31)) -> Target:
    return Target(
        "t", "t", "t", "t", "URBAN", "province", None, ("PENSION", "SI_ALLOWANCE"), bp, deadline
    )


def shares(*percents: tuple[str, int]) -> list[PeriodShare]:
    return [PeriodShare(p, 1000, pct * 10) for p, pct in percents]


class TestTargets:
    def test_least_squares_slope_is_exact(self):
        assert least_squares_slope([(0, Fraction(10)), (1, Fraction(12)), (2, Fraction(14))]) == 2
        assert least_squares_slope([(0, Fraction(10)), (1, Fraction(13)), (2, Fraction(14))]) == 2
        assert least_squares_slope([(0, Fraction(1))]) is None

    def test_rising_fast_enough_is_on_track_with_the_crossing_date(self):
        series = shares(
            ("2023-01", 10),
            ("2023-02", 12),
            ("2023-03", 14),
            ("2023-04", 16),
            ("2023-05", 18),
            ("2023-06", 20),
        )
        progress = evaluate(target(), series, "2023-06")
        assert progress.status == ON_TRACK
        assert progress.share == Fraction(1, 5)
        assert progress.gap_pp == 5
        assert progress.trend_pp_per_month == 2
        # 20% in June, +2 points a month: 25% is crossed during September (x = 2.5 months ahead).
        assert progress.projected_date == date(2023, 9, 30)

    def test_rising_too_slowly_is_at_risk(self):
        series = shares(("2023-05", 10), ("2023-06", 11))
        progress = evaluate(target(), series, "2023-06")
        assert progress.status == AT_RISK
        assert progress.projected_date == date(2024, 8, 31)

    def test_flat_or_falling_has_no_projected_date(self):
        progress = evaluate(target(), shares(("2023-05", 12), ("2023-06", 10)), "2023-06")
        assert (progress.status, progress.projected_date) == (AT_RISK, None)

    def test_at_or_above_the_target_is_reached(self):
        progress = evaluate(target(), shares(("2023-06", 25)), "2023-07")
        assert progress.status == REACHED
        assert progress.gap_pp == 0

    def test_only_the_last_six_periods_make_the_trend(self):
        series = shares(
            ("2022-01", 90),
            ("2023-01", 10),
            ("2023-02", 11),
            ("2023-03", 12),
            ("2023-04", 13),
            ("2023-05", 14),
            ("2023-06", 15),
        )
        assert evaluate(target(), series, "2023-06").trend_pp_per_month == 1

    def test_periods_after_as_of_are_ignored_and_no_data_is_said(self):
        assert evaluate(target(), shares(("2023-08", 30)), "2023-06").status == NO_DATA


class TestAreas:
    def test_urban_follows_the_unit_type_in_its_list(self):
        assert source_area("08707", LIST_2023).area_type == "URBAN"  # Phường
        assert source_area("08761", LIST_2023).area_type == "URBAN"  # Thị trấn
        assert source_area("08731", LIST_2023).area_type == "RURAL"  # Xã
        assert source_area("08707", LIST_2023).district_code == "243"

    def test_a_list_date_reads_the_list_in_force_on_that_day(self):
        assert list_in_force(date(2024, 6, 1)) == LIST_2023
        assert list_in_force(date(2025, 3, 1)) == LIST_2025
        assert list_in_force(date(2025, 7, 1)) == LIST_2025_07
        assert source_area("08707", date(2024, 6, 1)).name == "Phường Tích Sơn"

    def test_from_july_2025_figures_move_to_the_converted_unit(self):
        before = reporting_area("08713", LIST_2025, "2025-06")
        after = reporting_area("08713", LIST_2025, "2025-07")
        assert (before.code, before.district_code) == ("08713", "243")
        assert (after.code, after.name, after.list_date, after.province_code) == (
            "08707",
            "Phường Vĩnh Yên",
            LIST_2025_07,
            "25",
        )
        assert after.district_code == ""

    def test_an_unknown_code_is_counted_as_unknown(self):
        assert reporting_area("99999", LIST_2023, "2023-05").area_type == "UNKNOWN"


class TestPeriods:
    @pytest.mark.parametrize(
        ("moment", "period"),
        [
            (datetime(2022, 12, 31, 16, 59, tzinfo=UTC), "2022-12"),
            (datetime(2022, 12, 31, 17, 0, tzinfo=UTC), "2023-01"),
        ],
    )
    def test_periods_are_months_in_vietnam_time(self, moment, period):
        assert periods.period_of(moment) == period

    def test_month_arithmetic(self):
        assert periods.add_months("2023-11", 3) == "2024-02"
        assert periods.between("2022-11", "2023-02") == ["2022-11", "2022-12", "2023-01", "2023-02"]
        assert periods.last_day("2024-02") == date(2024, 2, 29)
