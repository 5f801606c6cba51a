"""Answers that do not say what the bank did (a gateway error or an unreadable body after the
bank took the batch, a 409 on a resend) are settled by status inquiries, never by a resend or a
cash payment; a cash list in doubt never makes the post office receive the others again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from services.payout.adapters.orm import batches, installments, payment_attempts
from tests.payout.harness import VCB, accounts, intake_events, people, verified
from tests.payout.test_failures import attempt_ids, batch_rows, ready

PERIOD = "2031-05"


async def attempts_by_installment(stack) -> dict[int, list[str]]:
    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(
                    payment_attempts.c.installment_id, payment_attempts.c.end_to_end_id
                ).order_by(payment_attempts.c.id)
            )
        ).all()
    found: dict[int, list[str]] = {}
    for installment_id, e2e in rows:
        found.setdefault(installment_id, []).append(e2e)
    return found


class TestAmbiguousAnswersAreInquired:
    @pytest.mark.parametrize(
        "fault",
        [
            {"error_after_accept_rate": 1.0, "error_after_accept_status": 502},
            {"error_after_accept_rate": 1.0, "error_after_accept_status": 504},
            {"unreadable_answer_rate": 1.0},
        ],
        ids=["502", "504", "unreadable-2xx"],
    )
    async def test_answer_after_acceptance_is_settled_by_inquiry_not_resent(
        self, payout, sandbox, fault
    ):
        stack, _ = await ready(payout, sandbox, 20, status_inquiry_after_seconds=30.0)
        # The bank takes the batch; its answer says nothing usable, its callbacks come late.
        await sandbox.set_faults(**fault, fault_budget=1, callback_delay_ms=4000)
        await stack.start_cycle(PERIOD)
        await stack.wait_complete(PERIOD, timeout=30)
        rows = await batch_rows(stack)
        assert [(r["attempts"], r["inquiries"] >= 1) for r in rows] == [(1, True)], rows
        assert await stack.states(PERIOD) == {"SETTLED": 20}
        bank = await sandbox.ledger()
        assert bank["credits"] == 20 and bank["duplicates"] == 0
        entries = (await sandbox.ledger_entries(limit=100))["entries"]
        assert {e["times_received"] for e in entries} == {1}  # never resent

    async def test_409_on_resend_then_the_bank_settles_the_original_pays_once_and_never_in_cash(
        self, payout, sandbox
    ):
        stack, _ = await ready(
            payout, sandbox, 6, permanent_failure_fallback="cash", status_inquiry_after_seconds=30.0
        )
        # The first answer is a gateway error though the bank took the batch; a resend is
        # refused as a duplicate; the bank settles the original, its callbacks come late.
        await sandbox.set_faults(
            error_after_accept_rate=1.0, conflict_on_resend_rate=1.0, callback_delay_ms=3000
        )
        await stack.start_cycle(PERIOD)
        await stack.wait_complete(PERIOD, timeout=30)
        await sandbox.wait_callbacks_idle(timeout=20)
        assert await stack.states(PERIOD) == {"SETTLED": 6}
        assert all(len(e2e) == 1 for e2e in (await attempts_by_installment(stack)).values())
        bank = await sandbox.ledger()
        assert bank["credits"] == 6 and "VNPOST" not in bank["by_counterparty"]
        assert "payment-failed" not in await stack.outbox_types()

    async def test_409_on_a_resend_is_inquired_and_never_fails_or_pays_in_cash(
        self, payout, sandbox
    ):
        stack = await payout(
            run_workers=False, permanent_failure_fallback="cash", status_inquiry_after_seconds=30.0
        )
        persons = people(5, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        await stack.start_cycle(PERIOD)
        await sandbox.set_faults(callback_delay_ms=60_000)  # only inquiries tell the outcome
        assert await stack.workers.submit_once()
        # The batch is due to go again (as after an inquiry a lagging bank answered "not
        # found"): the bank refuses the resend as a duplicate of what it holds.
        async with stack.runtime.session_factory() as session, session.begin():
            await session.execute(
                update(batches).values(state="RETRY", next_attempt_at=datetime.now(UTC))
            )
        await sandbox.set_faults(conflict_on_resend_rate=1.0, callback_delay_ms=60_000)
        for _ in range(4):
            await stack.workers.submit_once()
            await stack.workers.sweep_once()
        assert await stack.states(PERIOD) == {"SETTLED": 5}
        assert all(len(e2e) == 1 for e2e in (await attempts_by_installment(stack)).values())
        bank = await sandbox.ledger()
        assert bank["credits"] == 5 and "VNPOST" not in bank["by_counterparty"]


class TestCashListsInDoubt:
    async def cash_ready(self, payout, sandbox, communes: int):
        stack = await payout(status_inquiry_after_seconds=30.0)
        persons = people(communes * 2, bank_bin=VCB)
        events = []
        for n, person in enumerate(persons):
            person.method, person.bank_bin, person.account_number = "CASH_POST_OFFICE", None, None
            commune = f"0915{n % communes}"
            for event in intake_events(person, start_period="2031-01"):
                if hasattr(event, "commune_code"):
                    event = event.model_copy(update={"commune_code": commune})
                events.append(event)
        await stack.feed(events)
        await verified(stack, persons)
        return stack, persons

    @pytest.mark.parametrize(
        "fault",
        [
            {"error_after_accept_rate": 1.0},  # one list taken, its answer lost
            {"error_5xx_rate": 1.0},  # one list not taken
            {"unreadable_answer_rate": 1.0},
        ],
        ids=["504-after-acceptance", "503", "unreadable-2xx"],
    )
    async def test_one_list_in_doubt_never_resends_the_lists_already_accepted(
        self, payout, sandbox, fault
    ):
        stack, _persons = await self.cash_ready(payout, sandbox, 3)
        await sandbox.set_faults(**fault, fault_budget=1)
        await stack.start_cycle(PERIOD)
        await stack.wait_complete(PERIOD, timeout=30)
        assert await stack.states(PERIOD) == {"PAID_CASH": 6}
        assert len(await batch_rows(stack)) == 1
        entries = (await sandbox.ledger_entries(limit=100))["entries"]
        assert len(entries) == 6
        assert {e["times_received"] for e in entries} == {1}, entries
        assert (await sandbox.ledger())["by_counterparty"]["VNPOST"]["credits"] == 6
        assert len(await attempt_ids(stack)) == 6


class TestRejectedItems:
    async def test_refusals_at_intake_keep_their_reason_within_the_column(self, payout, sandbox):
        """A bank's reason longer than the column is cut at a character boundary, not left to
        wedge the batch."""
        from services.payout.service_layer import submission

        stack = await payout(run_workers=False)
        persons = people(2, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        await stack.start_cycle(PERIOD)
        claimed = await stack.workers.in_transaction(lambda uow: submission.claim_batch(uow, 30.0))
        e2e = await attempt_ids(stack)
        long_code = "Tài khoản không hợp lệ " * 10

        async def record(uow):
            return await submission.record_accepted(
                uow, claimed, [e2e[0]], [(e2e[1], long_code)], e2e, stack.workers.policy, 30.0
            )

        await stack.workers.in_transaction(record)
        async with stack.runtime.session_factory() as session:
            failed = (
                await session.execute(
                    select(
                        installments.c.state, installments.c.reason_code, installments.c.reason_text
                    ).where(installments.c.state == "FAILED")
                )
            ).one()
        assert failed.reason_code == long_code[:40]
        assert len(failed.reason_text) <= 300 and failed.reason_text.startswith(
            "Mã lý do Tài khoản"
        )

    async def test_duplicate_code_at_intake_is_inquired_not_failed(self, payout, sandbox):
        from services.payout.service_layer import submission

        stack = await payout(run_workers=False, permanent_failure_fallback="cash")
        persons = people(2, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        await stack.start_cycle(PERIOD)
        await sandbox.set_faults(callback_delay_ms=60_000)
        claimed = await stack.workers.in_transaction(lambda uow: submission.claim_batch(uow, 30.0))
        await stack.workers.send(claimed)  # the bank holds both
        async with stack.runtime.session_factory() as session, session.begin():
            await session.execute(
                update(payment_attempts).values(state="CREATED", submitted_at=None)
            )
            await session.execute(update(installments).values(state="SCHEDULED"))
            await session.execute(
                update(batches).values(state="SENDING", lease_until=datetime.now(UTC))
            )
        e2e = await attempt_ids(stack)

        async def record(uow):
            # The bank answers the resend: one accepted, the other "duplicate payment" (AM05).
            return await submission.record_accepted(
                uow, claimed, [e2e[0]], [(e2e[1], "AM05")], e2e, stack.workers.policy, 30.0
            )

        await stack.workers.in_transaction(record)
        assert "FAILED" not in await stack.states(PERIOD)
        assert [r["state"] for r in await batch_rows(stack)] == ["UNKNOWN"]
        assert await stack.workers.submit_once()  # due at once: the status inquiry settles both
        assert await stack.states(PERIOD) == {"SETTLED": 2}
        assert all(len(ids) == 1 for ids in (await attempts_by_installment(stack)).values())


class TestRefusedResend:
    async def sent(self, payout, sandbox):
        from services.payout.service_layer import submission

        stack = await payout(run_workers=False)
        persons = people(2, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        await stack.start_cycle(PERIOD)
        await sandbox.set_faults(callback_delay_ms=60_000)
        claimed = await stack.workers.in_transaction(lambda uow: submission.claim_batch(uow, 30.0))
        await stack.workers.send(claimed)
        # The same claim, resending: one item the bank holds, one it has never seen.
        async with stack.runtime.session_factory() as session, session.begin():
            await session.execute(
                update(batches).values(state="SENDING", lease_until=datetime.now(UTC))
            )
        return stack, claimed, await attempt_ids(stack)

    @pytest.mark.parametrize(("code", "failed"), [("FF01", 1), ("DUPLICATE_REQUEST", 0)])
    async def test_only_an_item_refused_and_not_held_by_the_bank_fails(
        self, payout, sandbox, code, failed
    ):
        from services.payout.service_layer import submission

        stack, claimed, e2e = await self.sent(payout, sandbox)
        findings = submission.InquiryFindings(
            [], pending=[e2e[0]], never_received=[e2e[1]], undetermined=[]
        )
        state = await stack.workers.in_transaction(
            lambda uow: submission.record_resend_refused(
                uow,
                claimed,
                code,
                findings,
                stack.workers.policy,
                retry_base=0.05,
                retry_cap=0.5,
                inquiry_after_seconds=30.0,
            )
        )
        states = await stack.states(PERIOD)
        assert states.get("FAILED", 0) == failed
        assert states["SUBMITTED"] == 2 - failed
        # A duplicate never fails: the item unknown to the bank goes again, inquired first.
        assert state == ("SUBMITTED" if failed else "RETRY")
