"""The pure rules: outcome decisions, periods, names, reconciliation matching."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.payout.domain import model
from services.payout.domain.model import Outcome, PaymentView, backoff_seconds, decide
from services.payout.domain.reconciliation import BankEntry, LedgerEntry, match, summarise
from services.payout.domain.verification import verdict
from shared.periods import (
    InvalidPeriod,
    add_months,
    current_period,
    last_day,
    last_scheduled_period,
)

NOW = datetime(2031, 3, 10, 3, 0, tzinfo=UTC)


def outcome(status: str, amount: int | None = 100, reason: str | None = None) -> Outcome:
    return Outcome("PAY-1-1", status, amount, reason, "FT1", NOW)  # type: ignore[arg-type]


def view(
    state: str, attempt_no: int = 1, current: int = 1, counterparty: str = "970436"
) -> PaymentView:
    return PaymentView(state, 100, current, attempt_no, counterparty)


class TestDecide:
    @pytest.mark.parametrize("status", ["SETTLED", "FAILED", "RETURNED", "PAID_CASH"])
    @pytest.mark.parametrize("state", [model.SCHEDULED, model.SUBMITTED])
    def test_open_installments_take_any_outcome(self, state, status):
        assert decide(view(state), outcome(status), "970436") == model.Decision(
            "APPLY", new_state=status
        )

    @pytest.mark.parametrize(
        "state", [model.FAILED, model.RETURNED, model.PAID_CASH, model.CANCELLED]
    )
    def test_a_final_state_never_goes_back(self, state):
        assert decide(view(state), outcome("SETTLED"), "970436").verdict in ("IGNORE", "ANOMALY")
        assert decide(view(state), outcome("RETURNED"), "970436").verdict == "IGNORE"

    def test_settled_then_returned_moves_forward_and_not_back(self):
        assert (
            decide(view(model.SETTLED), outcome("RETURNED"), "970436").new_state == model.RETURNED
        )
        assert decide(view(model.SETTLED), outcome("SETTLED"), "970436").verdict == "IGNORE"
        assert (
            decide(view(model.SETTLED), outcome("FAILED"), "970436").anomaly
            == "CONFLICTING_OUTCOME"
        )

    def test_amount_that_differs_is_an_anomaly(self):
        assert (
            decide(view(model.SUBMITTED), outcome("SETTLED", 101), "970436").anomaly
            == "AMOUNT_MISMATCH"
        )

    def test_another_counterparty_and_superseded_attempts(self):
        assert (
            decide(view(model.SUBMITTED), outcome("SETTLED"), "970418").anomaly
            == "WRONG_COUNTERPARTY"
        )
        assert (
            decide(
                view(model.SUBMITTED, attempt_no=1, current=2), outcome("FAILED"), "970436"
            ).verdict
            == "IGNORE"
        )
        assert (
            decide(
                view(model.SUBMITTED, attempt_no=1, current=2), outcome("SETTLED"), "970436"
            ).anomaly
            == "SUPERSEDED_ATTEMPT"
        )

    @pytest.mark.parametrize("status", ["RETURNED", model.REVERSED])
    def test_money_back_of_another_amount_is_an_anomaly_not_a_return(self, status):
        assert decide(view(model.SETTLED), outcome(status, 1), "970436") == model.Decision(
            "ANOMALY", anomaly="AMOUNT_MISMATCH"
        )

    @pytest.mark.parametrize("code", ["DU01", "DU02", "DU03", "DU04", "DU05", "AM05", "DUPL"])
    def test_a_rejection_as_duplicate_leaves_the_payment_open_for_an_inquiry(self, code):
        # The bank has the payment: a duplicate answer is no verdict on it.
        decision = decide(view(model.SUBMITTED), outcome("FAILED", reason=code), "970436")
        assert decision == model.Decision("ANOMALY", anomaly="DUPLICATE_REJECTION")

    def test_a_reversal_of_an_unseen_booking_fails_without_a_verdict(self):
        decision = decide(view(model.SUBMITTED), outcome(model.REVERSED, reason="AC04"), "970436")
        assert decision.new_state == model.FAILED and not model.is_verdict(
            outcome(model.REVERSED, reason="AC04")
        )
        assert model.is_verdict(outcome("FAILED", reason="AC04"))

    def test_backoff_doubles_up_to_its_cap(self):
        assert [backoff_seconds(n, 1, 5) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


class TestPeriods:
    def test_arithmetic_and_schedules(self):
        assert add_months("2031-11", 3) == "2032-02"
        assert last_day("2032-02") == date(2032, 2, 29)
        assert last_scheduled_period("ONE_OFF", "2031-05", None) == "2031-05"
        assert last_scheduled_period("FIXED_MONTHLY", "2031-05", 12) == "2032-04"
        assert last_scheduled_period("OPEN_MONTHLY", "2031-05", None) is None
        with pytest.raises(InvalidPeriod):
            add_months("2031-13", 1)

    def test_current_period_is_vietnam_time(self):
        assert (
            current_period(datetime(2031, 3, 31, 18, 0, tzinfo=UTC)) == "2031-04"
        )  # 01:00 on 1 April in Hanoi


class TestNames:
    def test_diacritics_and_case_are_folded(self):
        assert verdict("FOUND", "NGUYEN VAN DUC", "Nguyễn Văn Đức") == "VERIFIED"
        assert verdict("FOUND", "NGUYEN VAN DUNG", "Nguyễn Văn Đức") == "NAME_MISMATCH"
        assert verdict("NOT_FOUND", None, "x") == "NO_SUCH_ACCOUNT"
        assert verdict("BANK_NOT_SUPPORTED", None, "x") == "BANK_NOT_SUPPORTED"


class TestReconciliationMatching:
    def test_every_kind_of_line(self):
        statement = [
            BankEntry("PAY-1-1", 100, "CREDITED", "FT1"),
            BankEntry("PAY-2-1", 250, "CREDITED", "FT2"),
            BankEntry("PAY-9-1", 70, "CREDITED", "FT9"),
            BankEntry("PAY-4-1", 40, "CREDITED", "FT4"),
        ]
        known = {
            "PAY-1-1": LedgerEntry("PAY-1-1", 1, 100, "SETTLED", "970436"),
            "PAY-2-1": LedgerEntry("PAY-2-1", 2, 200, "SETTLED", "970436"),
            "PAY-4-1": LedgerEntry("PAY-4-1", 4, 40, "SUBMITTED", "970436"),
        }
        day = {
            "PAY-1-1": known["PAY-1-1"],
            "PAY-2-1": known["PAY-2-1"],
            "PAY-3-1": LedgerEntry("PAY-3-1", 3, 30, "SETTLED", "970436"),
        }
        lines = match("970436", statement, known, day)
        assert {line.end_to_end_id: line.kind for line in lines} == {
            "PAY-1-1": "MATCHED",
            "PAY-2-1": "AMOUNT_DIFFERS",
            "PAY-9-1": "UNKNOWN_TO_US",
            "PAY-4-1": "STATUS_DIFFERS",
            "PAY-3-1": "MISSING_AT_BANK",
        }
        summary = summarise(lines, statement, ledger_total=330)
        assert summary["statement_total"] == 460 and summary["balanced"] is False
