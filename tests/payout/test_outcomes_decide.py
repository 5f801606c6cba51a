"""What a delivery of outcomes does, decided without a database: `domain.outcomes.decide` is
given the rows of the payments named and returns the row changes and the events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.payout.adapters.banks.base import describe
from services.payout.domain import model
from services.payout.domain.model import Outcome
from services.payout.domain.outcomes import OutcomePolicy, decide, each_of_rejected_files
from shared.events.contracts import (
    AccountFlagged,
    InstallmentScheduled,
    PaymentFailed,
    PaymentReturned,
)

BANK = "970436"
AMOUNT = 2_345_678
NOW = datetime(2031, 4, 6, 3, 0, tzinfo=UTC)
SETTLED_AT = datetime(2031, 4, 5, 20, 0, tzinfo=UTC)  # 6 April in Hanoi
NO_FALLBACK = OutcomePolicy(describe=describe)
CASH = OutcomePolicy(describe=describe, fallback="cash")


def payment(
    state: str = model.SUBMITTED,
    *,
    installment_id: int = 7,
    attempt_no: int = 1,
    counterparty: str = BANK,
    channel: str = model.OWN_ACCOUNT,
    **columns: Any,
) -> dict[str, Any]:
    """A row as the repository's `payments_named` gives it: an installment and its attempt."""
    row = {
        "id": installment_id,
        "cycle_id": 1,
        "entitlement_id": "ENT-1",
        "beneficiary_id": "BEN-1",
        "period": "2031-04",
        "amount": AMOUNT,
        "scheme": "PENSION",
        "agency": "BHXH",
        "commune_code": "09154",
        "commune_list_date": date(2031, 1, 1),
        "channel": channel,
        "counterparty": counterparty,
        "method_id": "PM-1",
        "state": state,
        "hold_reason": None,
        "reason_code": None,
        "reason_text": None,
        "attempt_no": attempt_no,
        "bank_reference": None,
        "settled_at": None,
        "paid_on": None,
        "staff_id": None,
        "created_at": NOW,
        "updated_at": NOW,
        "a_id": 70 + attempt_no,
        "a_no": attempt_no,
        "a_e2e": model.end_to_end_id(installment_id, attempt_no),
        "a_counterparty": counterparty,
        "a_channel": channel,
    }
    row.update(columns)
    return row


def outcome(
    status: str,
    *,
    amount: int | None = AMOUNT,
    reason: str | None = None,
    installment_id: int = 7,
    attempt_no: int = 1,
) -> Outcome:
    return Outcome(
        end_to_end_id=model.end_to_end_id(installment_id, attempt_no),
        status=status,  # type: ignore[arg-type]
        amount=amount,
        reason_code=reason,
        bank_reference="FT-1",
        occurred_at=SETTLED_AT,
        event_id=f"EVT-{status}",
    )


def kinds(changes) -> list[str]:
    return [a["kind"] for a in changes.anomalies]


class TestMoneyMoved:
    def test_a_settlement_settles_the_installment_and_its_attempt(self):
        changes, events = decide([payment()], [outcome("SETTLED")], BANK, NO_FALLBACK, NOW)
        [row] = changes.installments
        assert (row["state"], row["bank_reference"], row["settled_at"], row["updated_at"]) == (
            model.SETTLED,
            "FT-1",
            SETTLED_AT,
            NOW,
        )
        assert changes.attempts == [
            {
                "id": 71,
                "state": model.SETTLED,
                "reason_code": None,
                "bank_reference": "FT-1",
                "finished_at": NOW,
            }
        ]
        [settled] = events.settled
        assert (settled["installment_id"], settled["amount"], settled["settled_at"]) == (
            "7",
            AMOUNT,
            "2031-04-05T20:00:00Z",
        )
        assert events.others == [] and changes.anomalies == []
        assert (changes.applied.applied, changes.applied.by_state) == (1, {model.SETTLED: 1})

    def test_cash_paid_at_the_post_office_is_dated_in_vietnam(self):
        row = payment(attempt_no=2, counterparty=model.VNPOST, channel=model.CASH_POST_OFFICE)
        changes, events = decide(
            [row], [outcome("PAID_CASH", attempt_no=2)], model.VNPOST, NO_FALLBACK, NOW
        )
        assert changes.installments[0]["paid_on"] == date(2031, 4, 6)
        assert events.paid_in_cash[0]["paid_on"] == "2031-04-06"

    def test_settled_then_returned_in_one_delivery_keeps_both_in_order(self):
        changes, events = decide(
            [payment()],
            [outcome("SETTLED"), outcome("RETURNED", reason="AC04")],
            BANK,
            NO_FALLBACK,
            NOW,
        )
        assert [row["state"] for row in changes.installments] == [model.RETURNED]
        assert len(events.settled) == 1
        assert [type(e) for e in events.others] == [PaymentReturned]


class TestFailures:
    def test_a_permanent_account_failure_with_the_cash_fallback_goes_to_the_post_office(self):
        changes, events = decide(
            [payment()], [outcome("FAILED", amount=None, reason="AC04")], BANK, CASH, NOW
        )
        [row] = changes.installments
        assert (
            row["state"],
            row["channel"],
            row["counterparty"],
            row["attempt_no"],
            row["reason_code"],
        ) == (model.SCHEDULED, model.CASH_POST_OFFICE, model.VNPOST, 2, "AC04")
        assert changes.to_post_office == [row]
        assert (
            changes.attempts[0]["state"] == model.FAILED
            and changes.attempts[0]["reason_code"] == "AC04"
        )
        assert changes.flagged_methods == [("BEN-1", "PM-1", "AC04")]
        assert [type(e) for e in events.others] == [
            PaymentFailed,
            AccountFlagged,
            InstallmentScheduled,
        ]
        failed = events.others[0]
        assert (
            failed.permanent and failed.counterparty == BANK and failed.channel == model.OWN_ACCOUNT
        )
        assert events.others[2].counterparty == model.VNPOST

    def test_a_permanent_failure_without_the_fallback_fails(self):
        changes, events = decide(
            [payment()], [outcome("FAILED", amount=None, reason="AC04")], BANK, NO_FALLBACK, NOW
        )
        assert changes.installments[0]["state"] == model.FAILED and changes.to_post_office == []
        assert [type(e) for e in events.others] == [PaymentFailed, AccountFlagged]

    @pytest.mark.parametrize(
        "reason", ["AM04", None, "XX99"], ids=["transient", "no reason", "unknown code"]
    )
    def test_a_failure_that_is_no_verdict_never_takes_the_cash_fallback(self, reason):
        changes, events = decide(
            [payment()], [outcome("FAILED", amount=None, reason=reason)], BANK, CASH, NOW
        )
        [row] = changes.installments
        assert (row["state"], row["reason_code"]) == (model.FAILED, reason or "UNSPECIFIED")
        assert changes.to_post_office == [] and changes.flagged_methods == []
        [failed] = events.others
        assert isinstance(failed, PaymentFailed) and not failed.permanent

    def test_the_holder_of_the_own_account_deceased_stops_the_beneficiary(self):
        changes, _ = decide(
            [payment()], [outcome("FAILED", amount=None, reason="MD07")], BANK, CASH, NOW
        )
        assert changes.installments[0]["state"] == model.FAILED  # no cash for the deceased
        assert changes.holders_deceased == [("BEN-1", "2031-04")]

    def test_a_long_reason_is_cut_to_its_column(self):
        code = "Tài khoản không hợp lệ " * 10
        changes, _ = decide(
            [payment()], [outcome("FAILED", amount=None, reason=code)], BANK, NO_FALLBACK, NOW
        )
        row = changes.installments[0]
        assert row["reason_code"] == code[: model.REASON_CODE_LENGTH]
        assert len(row["reason_text"]) <= model.REASON_TEXT_LENGTH


class TestInDoubt:
    @pytest.mark.parametrize("reason", ["DU01", "AM05", "DUPLICATE_REQUEST"])
    def test_a_refusal_as_a_duplicate_is_an_anomaly_and_leaves_the_payment_open(self, reason):
        changes, events = decide(
            [payment()], [outcome("FAILED", amount=None, reason=reason)], BANK, CASH, NOW
        )
        assert changes.installments == [] and changes.attempts == [] and events.others == []
        assert kinds(changes) == ["DUPLICATE_REJECTION"]

    def test_a_pending_booking_changes_nothing_and_is_counted(self):
        changes, events = decide([payment()], [outcome(model.PENDING)], BANK, NO_FALLBACK, NOW)
        assert changes.installments == [] and events.settled == [] and changes.anomalies == []
        assert changes.applied.pending == 1

    def test_a_settlement_without_an_amount_settles_nothing(self):
        changes, events = decide(
            [payment()], [outcome("SETTLED", amount=None)], BANK, NO_FALLBACK, NOW
        )
        assert changes.installments == [] and events.settled == []
        assert kinds(changes) == ["AMOUNT_MISSING"]


class TestAnomalies:
    def test_a_reversal_after_settlement_returns_the_money_and_is_kept_for_a_person(self):
        changes, events = decide(
            [payment(model.SETTLED)], [outcome(model.REVERSED)], BANK, NO_FALLBACK, NOW
        )
        [row] = changes.installments
        assert (row["state"], row["reason_code"]) == (model.RETURNED, model.REASON_REVERSED)
        assert kinds(changes) == [model.ANOMALY_REVERSED]
        [returned] = events.others
        assert (
            isinstance(returned, PaymentReturned) and returned.reason_code == model.REASON_REVERSED
        )

    def test_money_moved_in_another_amount_is_an_anomaly(self):
        changes, events = decide(
            [payment()], [outcome("SETTLED", amount=AMOUNT + 1)], BANK, NO_FALLBACK, NOW
        )
        assert changes.installments == [] and events.settled == []
        [anomaly] = changes.anomalies
        assert (anomaly["kind"], anomaly["expected_amount"], anomaly["reported_amount"]) == (
            "AMOUNT_MISMATCH",
            AMOUNT,
            AMOUNT + 1,
        )

    def test_an_outcome_for_a_payment_we_do_not_know(self):
        changes, _ = decide([], [outcome("SETTLED")], BANK, NO_FALLBACK, NOW)
        [anomaly] = changes.anomalies
        assert (anomaly["kind"], anomaly["installment_id"]) == ("UNKNOWN_PAYMENT", None)

    def test_an_outcome_from_another_counterparty(self):
        changes, _ = decide([payment()], [outcome("SETTLED")], "970418", NO_FALLBACK, NOW)
        assert kinds(changes) == ["WRONG_COUNTERPARTY"] and changes.installments == []

    def test_an_unreadable_entry_is_reported_and_moves_nothing(self):
        unreadable = outcome(model.UNREADABLE, reason="AMOUNT")
        changes, _ = decide([payment()], [unreadable], BANK, NO_FALLBACK, NOW)
        assert kinds(changes) == ["UNREADABLE_AMOUNT"] and changes.applied.unreadable == 1


class TestFinalStates:
    def test_the_same_outcome_for_a_final_payment_is_ignored(self):
        changes, events = decide(
            [payment(model.FAILED)],
            [outcome("FAILED", amount=None, reason="AC04")],
            BANK,
            CASH,
            NOW,
        )
        assert changes.installments == [] and events.others == [] and changes.anomalies == []
        assert changes.applied.ignored == 1

    def test_a_contradiction_of_a_final_state_is_an_anomaly(self):
        changes, _ = decide(
            [payment(model.SETTLED)],
            [outcome("FAILED", amount=None, reason="AC04")],
            BANK,
            CASH,
            NOW,
        )
        assert kinds(changes) == ["CONFLICTING_OUTCOME"] and changes.installments == []

    def test_money_moved_on_an_attempt_the_fallback_replaced(self):
        replaced = payment(
            model.SCHEDULED, attempt_no=2, counterparty=model.VNPOST, channel=model.CASH_POST_OFFICE
        ) | {
            "a_id": 71,
            "a_no": 1,
            "a_e2e": model.end_to_end_id(7, 1),
            "a_counterparty": BANK,
            "a_channel": model.OWN_ACCOUNT,
        }
        changes, _ = decide([replaced], [outcome("SETTLED")], BANK, CASH, NOW)
        assert kinds(changes) == ["SUPERSEDED_ATTEMPT"] and changes.installments == []


class TestRejectedFiles:
    def test_a_file_refused_fails_each_of_its_payments_and_an_unknown_file_stays_unknown(self):
        refused = Outcome(
            end_to_end_id="B1-1-970436-0",
            status=model.FILE_REJECTED,
            amount=None,  # type: ignore[arg-type]
            reason_code=None,
            bank_reference=None,
            occurred_at=SETTLED_AT,
        )
        stranger = Outcome(
            end_to_end_id="B9",
            status=model.FILE_REJECTED,
            amount=None,  # type: ignore[arg-type]
            reason_code="FF01",
            bank_reference=None,
            occurred_at=SETTLED_AT,
        )
        expanded = each_of_rejected_files(
            [refused, stranger], {"B1-1-970436-0": ["PAY-7-1", "PAY-8-1"]}
        )
        assert [(o.end_to_end_id, o.status, o.reason_code) for o in expanded] == [
            ("PAY-7-1", "FAILED", "FF01"),
            ("PAY-8-1", "FAILED", "FF01"),
            ("B9", model.FILE_REJECTED, "FF01"),
        ]
