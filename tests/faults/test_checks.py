"""The fault run's checks on small hand-made ledgers: a clean run passes, and each way of paying
twice, losing an installment or disagreeing on money is caught."""

from __future__ import annotations

from dataclasses import replace

from bench.fault_run import FaultRun, FaultRunConfig, plan_disruptions
from bench.faults import checks as C


def installment(
    n: int,
    state: str = "SETTLED",
    amount: int = 1_500_000,
    reason: str | None = None,
    attempt: int = 1,
    person: int | None = None,
    scheme: str = "PENSION",
    period: str = "2031-06",
) -> C.Installment:
    text = "the account is closed" if reason else None
    return C.Installment(
        n,
        f"E{n}",
        state,
        amount,
        "970436",
        attempt,
        reason,
        text,
        f"B{n if person is None else person}",
        scheme,
        period,
    )


def entry(
    n: int,
    status: str = "SETTLED",
    amount: int = 1_500_000,
    attempt: int = 1,
    reason: str | None = None,
    recredit: int = 0,
) -> C.SandboxEntry:
    return C.SandboxEntry(
        f"PAY-{n}-{attempt}",
        amount,
        "970436",
        status,
        reason,
        status in ("SETTLED", "PAID"),
        recredit,
    )


def bank_ledger(entries: list[C.SandboxEntry], duplicates: int = 0) -> dict:
    credited = [e for e in entries if e.credited]
    return {
        "credits": len(credited),
        "total_credited": sum(e.amount for e in credited),
        "duplicates": duplicates,
        "transfers": len(entries),
    }


def payout_ledger(installments: list[C.Installment]) -> dict:
    paid = [i for i in installments if i.state in C.PAID_STATES]
    failed = [i for i in installments if i.state == "FAILED"]
    paid_sum = sum(i.amount for i in paid)
    return {
        "settled_count": len(paid),
        "settled_sum": paid_sum,
        "counterparties": [
            {
                "counterparty": "970436",
                "settled_count": len(paid),
                "settled_sum": paid_sum,
                "failed_count": len(failed),
                "failed_sum": sum(i.amount for i in failed),
                "returned_count": 0,
                "returned_sum": 0,
            }
        ],
    }


def clean() -> tuple[list[C.Installment], list[C.SandboxEntry]]:
    ours = [installment(1), installment(2), installment(3, "FAILED", reason="AC04")]
    bank = [entry(1), entry(2), entry(3, "FAILED", reason="AC04")]
    return ours, bank


def reconciliation(total: int, lines: tuple[C.ReconciliationLine, ...] = ()) -> C.ReconciliationRun:
    counts = dict.fromkeys(
        ("MATCHED", "MISSING_AT_BANK", "UNKNOWN_TO_US", "AMOUNT_DIFFERS", "STATUS_DIFFERS"), 0
    )
    counts["MATCHED"] = 2
    for line in lines:
        counts[line.kind] += 1
    return C.ReconciliationRun(
        "970436", "2031-06-05", {"counts": counts, "statement_total": total, "difference": 0}, lines
    )


def figures(
    paid_count: int, paid_amount: int, failed_count: int = 1, failed_amount: int = 1_500_000
) -> dict:
    return {
        "paid_count": paid_count,
        "paid_amount": paid_amount,
        "failed_count": failed_count,
        "failed_amount": failed_amount,
        "returned_count": 0,
        "returned_amount": 0,
        "pending_count": 0,
    }


class TestCleanRun:
    def test_every_check_passes_when_ledgers_agree(self) -> None:
        ours, bank = clean()
        results = [
            C.all_final(ours),
            C.none_lost(ours, 3),
            C.no_duplicates_at_the_bank(bank_ledger(bank), bank),
            C.no_end_to_end_id_credited_twice(bank_ledger(bank), bank),
            C.no_installment_paid_twice(bank),
            C.money_to_the_dong(bank, payout_ledger(ours)),
            C.states_agree(ours, bank),
            C.failures_explained(ours, bank),
            C.reconciliation_clean([reconciliation(3_000_000)], bank),
            C.reporting_equal(figures(2, 3_000_000), payout_ledger(ours), bank),
            C.no_anomalies({}),
            C.events_applied(0, [], 10),
            C.no_dead_letters([]),
            C.one_payment_per_person_scheme_and_period(ours, bank),
        ]
        assert [r.name for r in results if not r.ok] == []


class TestPaidTwice:
    def test_a_second_attempt_credited_for_the_same_installment_is_caught(self) -> None:
        ours, bank = clean()
        bank.append(entry(1, attempt=2))
        assert not C.no_installment_paid_twice(bank).ok
        assert not C.states_agree(ours, bank).ok
        assert not C.money_to_the_dong(bank, payout_ledger(ours)).ok

    def test_a_resend_under_another_batch_counted_by_the_bank_is_caught(self) -> None:
        _, bank = clean()
        bank[0] = replace(bank[0], recredit_attempts=1)
        assert not C.no_duplicates_at_the_bank(bank_ledger(bank, duplicates=1), bank).ok

    def test_an_end_to_end_id_listed_twice_is_caught(self) -> None:
        _, bank = clean()
        bank.append(bank[0])
        assert not C.no_end_to_end_id_credited_twice(bank_ledger(bank), bank).ok


class TestPaidTwiceForOnePersonSchemeAndPeriod:
    """Two installments of one person, scheme and period, each paid once: every check per
    installment or end-to-end id passes, only the check by person finds the double payment."""

    def two_pensions(self) -> tuple[list[C.Installment], list[C.SandboxEntry]]:
        ours, bank = clean()
        ours.append(installment(4, person=1))  # a second PENSION entitlement of person B1
        bank.append(entry(4))
        return ours, bank

    def test_a_second_entitlement_of_the_same_scheme_paid_in_the_same_period_is_caught(
        self,
    ) -> None:
        ours, bank = self.two_pensions()
        found = C.one_payment_per_person_scheme_and_period(ours, bank)
        assert not found.ok and found.found == 1
        assert found.detail["paid_twice"] == [
            {"beneficiary_id": "B1", "scheme": "PENSION", "period": "2031-06", "credits": 2}
        ]

    def test_the_checks_per_installment_do_not_see_it(self) -> None:
        ours, bank = self.two_pensions()
        per_installment = [
            C.no_installment_paid_twice(bank),
            C.no_end_to_end_id_credited_twice(bank_ledger(bank), bank),
            C.no_duplicates_at_the_bank(bank_ledger(bank), bank),
            C.states_agree(ours, bank),
            C.money_to_the_dong(bank, payout_ledger(ours)),
            C.none_lost(ours, 4),
        ]
        assert all(check.ok for check in per_installment)

    def test_cash_paid_beside_the_transfer_the_bank_had_is_caught(self) -> None:
        ours, bank = clean()
        ours[0] = installment(1, "PAID_CASH", attempt=2)
        bank.append(C.SandboxEntry("PAY-1-2", 1_500_000, "VNPOST", "PAID", None, True, 0))
        assert not C.one_payment_per_person_scheme_and_period(ours, bank).ok

    def test_cash_after_the_bank_sent_the_transfer_back_is_one_payment(self) -> None:
        ours, bank = clean()
        ours[0] = installment(1, "PAID_CASH", attempt=2)
        bank[0] = C.SandboxEntry("PAY-1-1", 1_500_000, "970436", "RETURNED", "AC04", True, 0)
        bank.append(C.SandboxEntry("PAY-1-2", 1_500_000, "VNPOST", "PAID", None, True, 0))
        assert C.one_payment_per_person_scheme_and_period(ours, bank).ok

    def test_the_same_person_in_another_period_or_scheme_is_not_a_double(self) -> None:
        ours, bank = clean()
        ours += [
            installment(4, person=1, period="2031-07"),
            installment(5, person=1, scheme="MERITORIOUS"),
        ]
        bank += [entry(4), entry(5)]
        assert C.one_payment_per_person_scheme_and_period(ours, bank).ok

    def test_a_credit_naming_no_installment_of_ours_is_caught(self) -> None:
        ours, bank = clean()
        bank.append(entry(9))
        assert not C.one_payment_per_person_scheme_and_period(ours, bank).ok

    def test_an_installment_read_without_its_person_cannot_pass(self) -> None:
        ours, bank = clean()
        ours[0] = replace(ours[0], beneficiary_id=None)
        assert not C.one_payment_per_person_scheme_and_period(ours, bank).ok


class TestLostOrOpen:
    def test_a_missing_installment_is_caught(self) -> None:
        ours, _ = clean()
        assert not C.none_lost(ours[:2], 3).ok

    def test_two_installments_for_one_entitlement_are_caught(self) -> None:
        ours, _ = clean()
        assert not C.none_lost([*ours[:2], replace(ours[2], entitlement_id="E1")], 3).ok

    def test_an_installment_still_submitted_is_caught(self) -> None:
        ours, _ = clean()
        assert not C.all_final([*ours, installment(4, "SUBMITTED")]).ok


class TestDisagreement:
    def test_failed_here_but_credited_at_the_bank_is_caught(self) -> None:
        ours, bank = clean()
        bank[2] = entry(3)
        assert not C.states_agree(ours, bank).ok

    def test_settled_here_but_failed_at_the_bank_is_caught(self) -> None:
        ours, bank = clean()
        bank[0] = entry(1, "FAILED", reason="AC01")
        assert not C.states_agree(ours, bank).ok

    def test_a_failure_without_a_reason_is_caught(self) -> None:
        ours, bank = clean()
        ours[2] = replace(ours[2], reason_code=None, reason_text=None)
        assert not C.failures_explained(ours, bank).ok

    def test_a_reason_other_than_the_banks_is_caught(self) -> None:
        ours, bank = clean()
        ours[2] = replace(ours[2], reason_code="AC01")
        assert not C.failures_explained(ours, bank).ok


class TestReconciliation:
    def test_a_payment_missing_at_the_bank_is_not_clean(self) -> None:
        _, bank = clean()
        line = C.ReconciliationLine("MISSING_AT_BANK", "PAY-9-1", "SETTLED", None)
        assert not C.reconciliation_clean([reconciliation(3_000_000, (line,))], bank).ok

    def test_a_cash_return_the_statement_shows_is_explained(self) -> None:
        _, bank = clean()
        line = C.ReconciliationLine("STATUS_DIFFERS", "PAY-3-1", "FAILED", "RETURNED")
        assert C.reconciliation_clean([reconciliation(3_000_000, (line,))], bank).ok

    def test_statements_that_do_not_add_up_to_the_banks_credits_are_not_clean(self) -> None:
        _, bank = clean()
        assert not C.reconciliation_clean([reconciliation(2_999_999)], bank).ok

    def test_no_reconciliation_at_all_is_not_clean(self) -> None:
        _, bank = clean()
        assert not C.reconciliation_clean([], bank).ok


class TestReporting:
    def test_one_dong_off_is_caught(self) -> None:
        ours, bank = clean()
        assert not C.reporting_equal(figures(2, 2_999_999), payout_ledger(ours), bank).ok

    def test_settlements_left_pending_are_caught(self) -> None:
        ours, bank = clean()
        stuck = {**figures(1, 1_500_000), "pending_count": 1}
        assert not C.reporting_equal(stuck, payout_ledger(ours), bank).ok

    def test_events_not_applied_or_not_published_are_caught(self) -> None:
        assert not C.events_applied(0, ["payment-settled 7f3a"], 10).ok
        assert not C.events_applied(1, [], 10).ok

    def test_a_dead_lettered_event_is_caught(self) -> None:
        dead = [
            {
                "event_id": "7f3a",
                "type": "vn.benefits.payout.payment-settled.v1",
                "reason": "handler_failed",
                "consumer": "reporting.projections",
            }
        ]
        assert not C.no_dead_letters(dead).ok


class TestPlan:
    def test_ten_kills_spread_and_the_restarts_at_one_and_two_thirds(self) -> None:
        kills, restarts = plan_disruptions(FaultRunConfig(kills=10))
        shares = [share for _, share in kills]
        assert len(kills) == 10 and shares == sorted(shares)
        assert shares[0] == 0.05 and shares[-1] == 0.85
        assert [kind for kind, _ in restarts] == ["kafka_restart", "postgres_restart"]
        assert shares[0] < restarts[0][1] < restarts[1][1] < shares[-1]

    def test_the_order_of_the_restarts_can_be_turned_round(self) -> None:
        _, restarts = plan_disruptions(
            FaultRunConfig(kills=3, infra_order=("postgres_restart", "kafka_restart"))
        )
        assert [kind for kind, _ in restarts] == ["postgres_restart", "kafka_restart"]

    def test_done_must_match_what_was_asked(self) -> None:
        asked = {"kill": 10, "kafka_restart": 1, "postgres_restart": 1}
        assert C.disruptions_done(asked, dict(asked)).ok
        assert not C.disruptions_done(asked, {**asked, "kill": 9}).ok


class TestInjectedFaults:
    def test_slow_answers_outlast_the_lease_and_the_worker_waits_for_them(self) -> None:
        run = FaultRun(
            FaultRunConfig(
                lease_seconds=8.0, bank_read_timeout_seconds=2.0, timeout_hold_seconds=3.0
            )
        )
        faults = run.faults()
        assert faults["slow_answer_rate"] > 0
        assert (
            8.0 < faults["slow_answer_seconds"] < run.read_timeout < faults["timeout_hold_seconds"]
        )

    def test_ambiguous_answers_and_refused_resends_are_injected_and_the_sandbox_takes_them(
        self,
    ) -> None:
        from services.sandbox.state import Faults

        run = FaultRun(FaultRunConfig())
        early, late = run.faults(0.1), run.faults(0.6)
        for name in (
            "error_after_accept_rate",
            "unreadable_answer_rate",
            "slow_answer_rate",
            "conflict_on_resend_rate",
        ):
            assert early[name] > 0, name
        assert (early["error_after_accept_status"], late["error_after_accept_status"]) == (504, 502)
        Faults(**early)
        Faults(**late)


class TestReversalsAndReturns:
    """A booked debit the bank reversed (payout: RETURNED, reason REVERSED, flagged for a
    person) and a return that came days later (payout: RETURNED with the bank's reason): the
    money that came back agrees to the đồng between the sandbox's ledger, payout and reporting."""

    def run(self) -> tuple[list[C.Installment], list[C.SandboxEntry]]:
        ours, bank = clean()
        ours += [
            installment(4, "RETURNED", amount=2_000_000, reason="REVERSED"),
            installment(5, "RETURNED", amount=3_000_000, reason="AC04"),
        ]
        bank += [
            C.SandboxEntry("PAY-4-1", 2_000_000, "970405", "REVERSED", None, True, 0),
            C.SandboxEntry("PAY-5-1", 3_000_000, "970405", "RETURNED", "AC04", True, 0),
        ]
        return ours, bank

    @staticmethod
    def ledgers(ours: list[C.Installment], bank: list[C.SandboxEntry]) -> tuple[dict, dict, dict]:
        back = [i for i in ours if i.state == "RETURNED"]
        payout = payout_ledger(ours)
        payout["counterparties"][0].update(
            returned_count=len(back), returned_sum=sum(i.amount for i in back)
        )
        sandbox = bank_ledger(bank)
        returned = sum(e.amount for e in bank if e.status == "RETURNED" and e.credited)
        reversed_ = sum(e.amount for e in bank if e.status == "REVERSED")
        sandbox.update(
            total_returned=returned,
            total_reversed=reversed_,
            returned=sum(1 for e in bank if e.status == "RETURNED" and e.credited),
            reversed=sum(1 for e in bank if e.status == "REVERSED"),
            net_credited=sandbox["total_credited"] - returned - reversed_,
        )
        reported = {
            **figures(2, 3_000_000),
            "returned_count": len(back),
            "returned_amount": sum(i.amount for i in back),
        }
        return payout, sandbox, reported

    def test_a_reversal_and_a_late_return_pass_every_check(self) -> None:
        ours, bank = self.run()
        payout, sandbox, reported = self.ledgers(ours, bank)
        results = [
            C.states_agree(ours, bank),
            C.money_to_the_dong(bank, payout),
            C.failures_explained(ours, bank),
            C.money_back_to_the_dong(ours, bank, payout, reported),
            C.sandbox_ledger_nets(sandbox, bank),
            C.no_end_to_end_id_credited_twice(sandbox, bank),
            C.reporting_equal(reported, payout, bank),
            C.no_anomalies({"REVERSED_AFTER_SETTLEMENT": 1}, C.expected_anomalies(ours, bank)),
            C.one_payment_per_person_scheme_and_period(ours, bank),
        ]
        assert [r.name for r in results if not r.ok] == []

    def test_a_reversal_payout_never_heard_of_is_caught(self) -> None:
        ours, bank = self.run()
        ours[3] = installment(4, "SETTLED", amount=2_000_000)
        payout, _, reported = self.ledgers(ours, bank)
        assert not C.states_agree(ours, bank).ok
        assert not C.money_to_the_dong(bank, payout).ok
        assert not C.money_back_to_the_dong(ours, bank, payout, reported).ok

    def test_money_back_one_dong_off_between_payout_and_the_sandbox_is_caught(self) -> None:
        ours, bank = self.run()
        payout, _, reported = self.ledgers(ours, bank)
        bank[4] = replace(bank[4], amount=2_999_999)
        found = C.money_back_to_the_dong(ours, bank, payout, reported)
        assert not found.ok and found.detail["sandbox"] == {"count": 2, "sum": 4_999_999}

    def test_reporting_counting_a_reversal_still_paid_is_caught(self) -> None:
        ours, bank = self.run()
        payout, _, reported = self.ledgers(ours, bank)
        reported.update(returned_count=1, returned_amount=3_000_000)
        assert not C.money_back_to_the_dong(ours, bank, payout, reported).ok

    def test_a_sandbox_ledger_that_does_not_net_its_reversals_is_caught(self) -> None:
        ours, bank = self.run()
        _, sandbox, _ = self.ledgers(ours, bank)
        assert not C.sandbox_ledger_nets(
            {**sandbox, "net_credited": sandbox["total_credited"]}, bank
        ).ok
        assert not C.sandbox_ledger_nets({**sandbox, "total_reversed": 0}, bank).ok

    def test_a_reversal_statement_line_is_explained_but_a_reversal_we_count_paid_is_not(
        self,
    ) -> None:
        _, bank = self.run()
        explained = C.ReconciliationLine("STATUS_DIFFERS", "PAY-4-1", "RETURNED", "REVERSED")
        assert C.reconciliation_clean([reconciliation(3_000_000, (explained,))], bank).ok
        unexplained = C.ReconciliationLine("STATUS_DIFFERS", "PAY-4-1", "SETTLED", "REVERSED")
        assert not C.reconciliation_clean([reconciliation(3_000_000, (unexplained,))], bank).ok

    def test_anomalies_other_than_one_per_reversal_after_settlement_are_caught(self) -> None:
        ours, bank = self.run()
        expected = C.expected_anomalies(ours, bank)
        assert expected == {"REVERSED_AFTER_SETTLEMENT": 1}
        assert not C.no_anomalies({"REVERSED_AFTER_SETTLEMENT": 2}, expected).ok
        assert not C.no_anomalies(
            {"REVERSED_AFTER_SETTLEMENT": 1, "AMOUNT_MISMATCH": 1}, expected
        ).ok
        assert not C.no_anomalies({}, expected).ok

    def test_a_debit_reversed_before_payout_saw_it_settle_is_a_failure_that_moved_nothing(
        self,
    ) -> None:
        ours, bank = self.run()
        ours[3] = installment(4, "FAILED", amount=2_000_000, reason="REVERSED")
        payout, _, reported = self.ledgers(ours, bank)
        reported["returned_count"], reported["returned_amount"] = 1, 3_000_000
        assert C.states_agree(ours, bank).ok
        assert C.money_back_to_the_dong(ours, bank, payout, reported).ok
        assert C.expected_anomalies(ours, bank) == {}


class TestIsoBankFaults:
    def test_batch_bookings_pending_first_reversals_and_late_returns_are_on_at_small_rates(
        self,
    ) -> None:
        from services.sandbox.state import Faults

        faults = FaultRun(FaultRunConfig()).faults()
        assert faults["batch_booking"] is True
        for name in ("pending_first_rate", "reversal_rate", "late_return_rate"):
            assert 0 < faults[name] <= 0.05, name
        assert 0 < faults["ntry_ref_share"] < 1
        assert faults["late_return_delay_seconds"] > 0
        Faults(**faults)
