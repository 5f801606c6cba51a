"""A full cycle against the real stack: PostgreSQL, Kafka and the bank sandbox as a server."""

from __future__ import annotations

from shared.clock import utcnow
from shared.periods import vietnam_date
from tests.payout.harness import AGRIBANK, BIDV, VCB, accounts, intake_events, people, verified

PERIOD = "2031-03"


class TestFullCycle:
    async def test_full_cycle_settles_and_ledger_equals_statement(self, payout, sandbox):
        stack = await payout()
        persons = (
            people(60, bank_bin=VCB) + people(40, bank_bin=BIDV) + people(30, bank_bin=AGRIBANK)
        )
        cash = people(10, bank_bin=VCB)
        for person in cash:
            person.method = "CASH_POST_OFFICE"
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed(
            [e for p in persons + cash for e in intake_events(p, start_period="2031-01")]
        )
        await verified(stack, persons)

        started = await stack.start_cycle(PERIOD)
        assert started["created"] is True
        assert started["installments"]["count"] == 140
        progress = await stack.wait_complete(PERIOD)

        expected = sum(p.amount for p in persons + cash)
        assert progress["by_state"]["SETTLED"]["count"] == 130
        assert progress["by_state"]["PAID_CASH"]["count"] == 10
        assert progress["installments"]["sum"] == expected

        async with stack.client() as client:
            ledger = (await client.get("/v1/ledger", params={"period": PERIOD})).json()
            assert ledger["settled_sum"] == expected
            # The sandbox's statements for today, bank by bank, add up to the đồng.
            today = vietnam_date(utcnow())
            statement_total = 0
            for counterparty in (VCB, BIDV, AGRIBANK, "VNPOST"):
                response = await client.post(
                    "/v1/reconciliations",
                    json={"counterparty": counterparty, "date": today.isoformat()},
                )
                assert response.status_code == 201, response.text
                summary = response.json()["summary"]
                assert summary["balanced"], summary
                statement_total += summary["statement_total"]
        assert statement_total == expected
        bank = await sandbox.ledger()
        assert bank["duplicates"] == 0
        assert bank["total_credited"] == expected
        types = await stack.outbox_types()
        assert types["installment-scheduled"] == 140
        assert types["payment-settled"] == 130
        assert types["payment-paid-in-cash"] == 10
        assert types["account-verified"] == 130


class TestCycleRunsOnce:
    async def test_cycle_started_twice_and_concurrently_pays_each_installment_once(
        self, payout, sandbox
    ):
        import asyncio

        stack = await payout(run_workers=False, cycle_chunk_size=7)  # each run in 12 chunks
        persons = people(80, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        stack.start_workers()
        await verified(stack, persons)

        first, second = await asyncio.gather(stack.start_cycle(PERIOD), stack.start_cycle(PERIOD))
        assert sorted([first["created"], second["created"]]) == [False, True]
        assert first["new_installments"] + second["new_installments"] == 80
        third = await stack.start_cycle(PERIOD)
        assert (
            third["created"] is False
            and third["new_installments"] == 0
            and third["new_batches"] == 0
        )
        # A second worker process competes for the same batches.
        from services.payout.adapters.banks.registry import BankChannelRegistry
        from services.payout.workers import PayoutWorkers

        async with BankChannelRegistry(stack.settings.bank_channels()) as channels:
            rival = PayoutWorkers(
                stack.settings, stack.runtime.session_factory, stack.runtime.outbox, channels
            )
            task = asyncio.ensure_future(rival.run_submission(stack.stop))
            progress = await stack.wait_complete(PERIOD)
            assert progress["by_state"]["SETTLED"]["count"] == 80
            stack.stop.set()
            await asyncio.gather(task, return_exceptions=True)

        bank = await sandbox.ledger()
        assert bank["credits"] == 80
        assert bank["duplicates"] == 0
        assert bank["total_credited"] == sum(p.amount for p in persons)
        entries = (await sandbox.ledger_entries(limit=200))["entries"]
        assert all(e["times_received"] == 1 for e in entries)
        types = await stack.outbox_types()
        assert types["installment-scheduled"] == 80
        assert (
            types["payment-submitted"] <= 80
        )  # a callback may overtake the recording of the answer
        assert types["payment-settled"] == 80
