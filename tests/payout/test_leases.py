"""Batch leases on PostgreSQL with two workers, each with its own engine and sessions: a worker
still waiting for a slow bank keeps its lease, and a worker whose lease was taken over changes
nothing when its late answer finally comes."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.adapters.orm import installments, metadata, outbox
from services.payout.service_layer import submission
from services.payout.workers import PayoutWorkers
from shared.runtime import Runtime
from tests.payout.harness import VCB, accounts, intake_events, people
from tests.payout.test_failures import batch_rows

PERIOD = "2031-05"


async def two_workers(payout, sandbox, count: int, **settings):
    """The stack's worker and a second one in the same database through its own engine."""
    stack = await payout(run_workers=False, **settings)
    persons = people(count, bank_bin=VCB)
    await sandbox.seed_accounts(accounts(persons))
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
    await stack.workers.verify_once()
    await stack.start_cycle(PERIOD)
    runtime = await Runtime.open(stack.settings, metadata)
    channels = BankChannelRegistry(stack.settings.bank_channels())
    other = PayoutWorkers(stack.settings, runtime.session_factory, runtime.outbox, channels)

    async def close() -> None:
        await channels.aclose()
        await runtime.close()

    return stack, other, close


class TestLeaseRenewal:
    async def test_slow_bank_answer_beyond_the_lease_keeps_the_batch_with_its_worker(
        self, payout, sandbox
    ):
        stack, other, close = await two_workers(
            payout,
            sandbox,
            10,
            lease_seconds=1.0,
            bank_read_timeout_seconds=15.0,
            status_inquiry_after_seconds=30.0,
        )
        try:
            await sandbox.set_faults(slow_answer_rate=1.0, slow_answer_seconds=3.5, fault_budget=1)
            sending = asyncio.ensure_future(stack.workers.submit_once())
            # The other worker looks for work all the time the first one waits for the bank.
            while not sending.done():
                assert not await other.submit_once()
                assert not await other.sweep_once()
                await asyncio.sleep(0.1)
            assert sending.result()
            rows = await batch_rows(stack)
            assert [(r["state"], r["attempts"], r["inquiries"]) for r in rows] == [
                ("SUBMITTED", 1, 0)
            ]
            assert other.inquiries_made == 0 and other.batches_sent == 0
            entries = (await sandbox.ledger_entries(limit=100))["entries"]
            assert {e["times_received"] for e in entries} == {1}
        finally:
            await close()


class TestFencing:
    async def test_late_result_of_a_worker_that_lost_its_lease_changes_nothing(
        self, payout, sandbox
    ):
        stack, other, close = await two_workers(
            payout, sandbox, 10, status_inquiry_after_seconds=30.0, bank_read_timeout_seconds=10.0
        )
        try:
            # The bank takes the batch at once but answers late; its callbacks come later still.
            await sandbox.set_faults(
                slow_answer_rate=1.0,
                slow_answer_seconds=1.5,
                fault_budget=1,
                callback_delay_ms=60_000,
            )
            # The first worker claims with a lease that runs out while it waits (it stalled: its
            # renewals are a third of its usual lease apart); the other worker takes the batch over.
            first = await stack.workers.in_transaction(lambda uow: submission.claim_batch(uow, 0.3))
            assert first is not None and first.action == "send"
            sending = asyncio.ensure_future(stack.workers.send(first))
            await asyncio.sleep(0.6)
            second = await other.in_transaction(lambda uow: submission.claim_batch(uow, 30.0))
            assert second is not None and second.action == "inquire"
            assert second.lease_token == first.lease_token + 1
            taken_over = (await batch_rows(stack))[0]

            await sending  # the bank's answer to the first worker comes now

            after = (await batch_rows(stack))[0]
            kept = (
                "state",
                "lease_until",
                "lease_token",
                "attempts",
                "inquiries",
                "submitted_at",
                "updated_at",
            )
            assert {k: after[k] for k in kept} == {k: taken_over[k] for k in kept}
            assert (after["state"], stack.workers.leases_lost) == ("INQUIRING", 1)
            async with stack.runtime.session_factory() as session:
                states = set((await session.execute(select(installments.c.state))).scalars())
                submitted = (
                    await session.execute(
                        select(outbox.c.id).where(outbox.c.event_type.like("%payment-submitted%"))
                    )
                ).all()
            assert states == {"SCHEDULED"} and submitted == []

            # The new owner's inquiry finds what the bank holds and records it.
            await other.inquire(second)
            rows = await batch_rows(stack)
            assert [(r["state"], r["lease_until"], r["attempts"]) for r in rows] == [
                ("COMPLETED", None, 1)
            ]
            assert await stack.states(PERIOD) == {"SETTLED": 10}
            assert other.leases_lost == 0
            ledger = await sandbox.ledger()
            assert ledger["credits"] == 10 and ledger["duplicates"] == 0
        finally:
            await close()

    async def test_stale_worker_release_of_a_retry_changes_nothing(self, payout, sandbox):
        stack, other, close = await two_workers(payout, sandbox, 3)
        try:
            first = await stack.workers.in_transaction(lambda uow: submission.claim_batch(uow, 0.2))
            await asyncio.sleep(0.4)
            second = await other.in_transaction(lambda uow: submission.claim_batch(uow, 30.0))
            assert second is not None
            before = (await batch_rows(stack))[0]

            async def stale_retry(uow):
                await submission.record_retry(uow, first, "HTTP 503", 0.05, 0.5)

            lost = None
            try:
                await stack.workers.in_transaction(stale_retry)
            except submission.LeaseLost as exc:
                lost = exc
            assert lost is not None
            assert (await batch_rows(stack))[0] == before
        finally:
            await close()
