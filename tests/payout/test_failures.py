"""Failure semantics against the sandbox: transient errors retry with the same references, a
timeout after sending is settled by status inquiries before any resend, permanent failures
end with their reason (and the cash fallback when configured), a deceased holder stops the
entitlement."""

from __future__ import annotations

from sqlalchemy import select

from services.payout.adapters.orm import batches, entitlements, payment_attempts, payment_methods
from tests.payout.harness import VCB, accounts, intake_events, people, verified
from tests.support.waiting import wait_until

PERIOD = "2031-05"


async def ready(payout, sandbox, count: int, **settings):
    stack = await payout(**settings)
    persons = people(count, bank_bin=VCB)
    await sandbox.seed_accounts(accounts(persons))
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
    await verified(stack, persons)
    return stack, persons


async def batch_rows(stack) -> list[dict]:
    async with stack.runtime.session_factory() as session:
        return [dict(r) for r in (await session.execute(select(batches))).mappings()]


async def attempt_ids(stack) -> list[str]:
    async with stack.runtime.session_factory() as session:
        return sorted((await session.execute(select(payment_attempts.c.end_to_end_id))).scalars())


class TestTransientFailures:
    async def test_5xx_retries_with_backoff_and_the_same_references(self, payout, sandbox):
        stack, _ = await ready(payout, sandbox, 30)
        await sandbox.set_faults(error_5xx_rate=1.0)
        await stack.start_cycle(PERIOD)
        references = await attempt_ids(stack)

        async def retried():
            rows = await batch_rows(stack)
            return all(r["attempts"] >= 3 for r in rows) and all(
                r["state"] in ("RETRY", "SENDING") for r in rows
            )

        await wait_until(retried, timeout=20, message="batches retried")
        await sandbox.set_faults()
        await stack.wait_complete(PERIOD)
        assert await attempt_ids(stack) == references  # never a new reference
        received = {
            e["end_to_end_id"] for e in (await sandbox.ledger_entries(limit=100))["entries"]
        }
        assert received == set(references)
        bank = await sandbox.ledger()
        assert bank["credits"] == 30 and bank["duplicates"] == 0
        assert all(r["last_error"] is None and r["attempts"] >= 3 for r in await batch_rows(stack))


class TestUnknownOutcome:
    async def test_timeout_after_sending_is_settled_by_status_inquiry_without_double_payment(
        self, payout, sandbox
    ):
        stack, _ = await ready(payout, sandbox, 30, status_inquiry_after_seconds=30.0)
        # The sandbox takes the batch, then answers later than payout waits (1 s); its outcome
        # callbacks come late, so only a status inquiry can tell what happened.
        await sandbox.set_faults(timeout_rate=1.0, timeout_hold_seconds=2.0, callback_delay_ms=4000)
        await stack.start_cycle(PERIOD)

        async def unknown():
            rows = await batch_rows(stack)
            return rows and all(
                r["state"] in ("UNKNOWN", "INQUIRING") or r["inquiries"] > 0 for r in rows
            )

        await wait_until(unknown, timeout=20, message="batches in doubt")
        await sandbox.set_faults(callback_delay_ms=4000)
        await stack.wait_complete(PERIOD, timeout=20)
        rows = await batch_rows(stack)
        assert all(r["attempts"] == 1 for r in rows), rows  # settled by inquiry: never resent
        assert all(r["inquiries"] >= 1 for r in rows)
        assert stack.workers.inquiries_made >= 30
        await sandbox.wait_callbacks_idle(timeout=20)  # the late callbacks change nothing
        assert await stack.states(PERIOD) == {"SETTLED": 30}
        assert (await stack.outbox_types())["payment-settled"] == 30
        bank = await sandbox.ledger()
        assert bank["credits"] == 30 and bank["duplicates"] == 0
        entries = (await sandbox.ledger_entries(limit=100))["entries"]
        assert all(e["times_received"] == 1 for e in entries)

    async def test_batch_the_bank_never_received_is_resent_with_the_same_references(
        self, payout, sandbox
    ):
        stack, _ = await ready(payout, sandbox, 20, status_inquiry_after_seconds=30.0)
        # Every call answers after 1.5 s: the submission times out, and so do the inquiries.
        await sandbox.set_faults(latency_ms=1500)
        await stack.start_cycle(PERIOD)
        references = await attempt_ids(stack)

        async def in_doubt():
            # The first send has met its timeout (claimed is not enough: the call may not have
            # left yet when the faults are lifted).
            rows = await batch_rows(stack)
            return rows and all(
                r["state"] in ("UNKNOWN", "INQUIRING", "RETRY")
                or r["inquiries"] >= 1
                or r["attempts"] >= 2
                for r in rows
            )

        await wait_until(in_doubt, timeout=20, message="submission in doubt")
        await sandbox.set_faults()
        await stack.wait_complete(PERIOD)
        assert await attempt_ids(stack) == references
        bank = await sandbox.ledger()
        assert bank["credits"] == 20 and bank["duplicates"] == 0
        # Timed out after sending: inquired before anything else (a connection that failed
        # before sending, as can happen on a loaded machine, is a plain retry instead).
        assert all(r["inquiries"] >= 1 or r["attempts"] >= 2 for r in await batch_rows(stack))


class TestPermanentFailures:
    async def test_permanent_failures_end_with_their_reason_and_flag_the_account(
        self, payout, sandbox
    ):
        stack, persons = await ready(payout, sandbox, 8)
        closed, blocked, deceased = persons[:2], persons[2:4], persons[4:5]
        await sandbox.seed_accounts(
            accounts(closed, "CLOSED")
            + accounts(blocked, "BLOCKED")
            + accounts(deceased, "DECEASED")
        )
        await stack.start_cycle(PERIOD)
        progress = await stack.wait_complete(PERIOD)
        assert progress["by_state"]["FAILED"]["count"] == 5
        assert progress["by_state"]["SETTLED"]["count"] == 3
        async with stack.client() as client:
            failed = (
                await client.get("/v1/installments", params={"period": PERIOD, "state": "FAILED"})
            ).json()["items"]
        reasons = {item["beneficiary_id"]: item["reason_code"] for item in failed}
        assert {reasons[p.beneficiary_id] for p in closed} == {"AC04"}
        assert {reasons[p.beneficiary_id] for p in blocked} == {"AC06"}
        assert reasons[deceased[0].beneficiary_id] == "MD07"
        assert all(item["reason_text"] for item in failed)
        types = await stack.outbox_types()
        assert types["payment-failed"] == 5 and types["account-flagged"] == 5
        async with stack.runtime.session_factory() as session:
            flagged = set(
                (
                    await session.execute(
                        select(payment_methods.c.beneficiary_id).where(
                            payment_methods.c.status == "FLAGGED"
                        )
                    )
                ).scalars()
            )
            stop = (
                await session.execute(
                    select(entitlements.c.entitlement_id, entitlements.c.stop_period).where(
                        entitlements.c.stop_period.is_not(None)
                    )
                )
            ).all()
        assert flagged == {p.beneficiary_id for p in closed + blocked + deceased}
        # The deceased holder's entitlement stops after this period: next month has no installment.
        assert stop == [(deceased[0].entitlement_id, "2031-06")]
        following = await stack.start_cycle("2031-06")
        assert following["installments"]["count"] == 7
        # Flagged accounts are not paid again until the agency fixes them: those wait, visibly.
        assert following["by_state"]["ON_HOLD"]["count"] == 4

    async def test_cash_fallback_pays_the_period_through_the_post_office(self, payout, sandbox):
        stack, persons = await ready(payout, sandbox, 6, permanent_failure_fallback="cash")
        closed, deceased = persons[:2], persons[2:3]
        await sandbox.seed_accounts(accounts(closed, "CLOSED") + accounts(deceased, "DECEASED"))
        await stack.start_cycle(PERIOD)
        progress = await stack.wait_complete(PERIOD)
        assert progress["by_state"]["PAID_CASH"]["count"] == 2  # the closed accounts, in cash
        assert progress["by_state"]["FAILED"]["count"] == 1  # nobody collects cash for the dead
        assert progress["by_state"]["SETTLED"]["count"] == 3
        async with stack.client() as client:
            cash = (
                await client.get(
                    "/v1/installments", params={"period": PERIOD, "state": "PAID_CASH"}
                )
            ).json()["items"]
            detail = (await client.get(f"/v1/installments/{cash[0]['id']}")).json()
        assert [a["end_to_end_id"].rsplit("-", 1)[1] for a in detail["attempts"]] == ["1", "2"]
        assert [a["state"] for a in detail["attempts"]] == ["FAILED", "PAID_CASH"]
        assert detail["attempts"][0]["reason_code"] == "AC04"
        bank = await sandbox.ledger()
        assert bank["duplicates"] == 0
        assert bank["by_counterparty"]["VNPOST"]["credits"] == 2
        types = await stack.outbox_types()
        assert types["payment-failed"] == 3 and types["payment-paid-in-cash"] == 2


class TestCrashRecovery:
    async def test_batch_of_a_worker_that_died_before_sending_is_inquired_then_resent_unchanged(
        self, payout, sandbox
    ):
        from datetime import UTC, datetime, timedelta

        from sqlalchemy import update

        stack = await payout(run_workers=False)
        persons = people(10, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        await stack.start_cycle(PERIOD)
        references = await attempt_ids(stack)
        # A worker claimed the batch and died: its lease ran out, nobody knows if it was sent.
        async with stack.runtime.session_factory() as session, session.begin():
            await session.execute(
                update(batches).values(
                    state="SENDING",
                    attempts=1,
                    lease_until=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
        stack.start_workers()
        await stack.wait_complete(PERIOD)
        rows = await batch_rows(stack)
        assert [(r["inquiries"], r["attempts"]) for r in rows] == [
            (1, 2)
        ]  # asked first, then resent
        assert stack.workers.inquiries_made == 10
        assert await attempt_ids(stack) == references
        bank = await sandbox.ledger()
        assert bank["credits"] == 10 and bank["duplicates"] == 0
