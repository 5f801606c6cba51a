"""The embedded default (SQLite + the embedded event log) runs a small cycle end to end."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from services.payout.adapters.orm import outbox
from tests.payout.harness import (
    VCB,
    PayoutStack,
    accounts,
    intake_events,
    payout_settings,
    people,
    verified,
)
from tests.support.sandbox import SandboxProcess


class TestEmbeddedDefault:
    async def test_small_cycle_settles_on_sqlite_and_the_embedded_log(
        self, tmp_path, api_port, sandbox_server: SandboxProcess, sandbox
    ):
        # Chunks of 4: the 15 installments are created in four transactions.
        settings = payout_settings(
            None, None, tmp_path, api_port, sandbox_server.url, cycle_chunk_size=4
        )
        assert settings.embedded and settings.resolved_database_url().startswith("sqlite")
        stack = PayoutStack(settings, sandbox_server.url)
        await stack.start(relay=True)
        try:
            persons = people(12, bank_bin=VCB)
            cash = people(3, bank_bin=VCB)
            for p in cash:
                p.method = "CASH_POST_OFFICE"
            await sandbox.seed_accounts(accounts(persons))
            await stack.feed(
                [e for p in persons + cash for e in intake_events(p, start_period="2031-01")]
            )
            await verified(stack, persons)
            started = await stack.start_cycle("2031-09")
            assert started["installments"]["count"] == 15
            progress = await stack.wait_complete("2031-09")
            assert progress["by_state"]["SETTLED"]["count"] == 12
            assert progress["by_state"]["PAID_CASH"]["count"] == 3
            bank = await sandbox.ledger()
            assert (
                bank["total_credited"] == sum(p.amount for p in persons + cash)
                and bank["duplicates"] == 0
            )

            async def published():
                async with stack.runtime.session_factory() as session:
                    return (
                        await session.execute(
                            select(func.count())
                            .select_from(outbox)
                            .where(outbox.c.published_at.is_(None))
                        )
                    ).scalar_one() == 0

            from tests.support.waiting import wait_until

            await wait_until(published, timeout=30, message="outbox relayed to the embedded log")
        finally:
            await stack.close()


class TestSubmissionOnSqlite:
    async def test_items_the_bank_accepts_are_submitted_with_their_event(
        self, tmp_path, api_port, sandbox_server: SandboxProcess, sandbox
    ):
        """SQLite's `UPDATE … FROM … RETURNING` may not return the joined table's columns: the
        accepted items still move to SUBMITTED with their end-to-end ids."""
        from services.payout.service_layer import submission
        from tests.payout.test_failures import attempt_ids

        settings = payout_settings(None, None, tmp_path, api_port, sandbox_server.url)
        stack = PayoutStack(settings, sandbox_server.url)
        await stack.start(run_workers=False)
        try:
            persons = people(2, bank_bin=VCB)
            await sandbox.seed_accounts(accounts(persons))
            await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
            await stack.workers.verify_once()
            await stack.start_cycle("2031-05")
            claimed = await stack.workers.in_transaction(
                lambda uow: submission.claim_batch(uow, 30.0)
            )
            e2e = await attempt_ids(stack)

            async def record(uow):
                return await submission.record_accepted(
                    uow, claimed, e2e, [], e2e, stack.workers.policy, 30.0
                )

            await stack.workers.in_transaction(record)
            assert await stack.states("2031-05") == {"SUBMITTED": 2}
            async with stack.runtime.session_factory() as session:
                submitted = [
                    orjson.loads(payload)["data"]
                    for payload in (
                        await session.execute(
                            select(outbox.c.payload).where(
                                outbox.c.event_type.like("%payment-submitted%")
                            )
                        )
                    ).scalars()
                ]
            assert sorted(event["end_to_end_id"] for event in submitted) == sorted(e2e)
        finally:
            await stack.close()
