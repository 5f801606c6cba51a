"""A status answer settles a payment only with the amount we sent; a camt.054 whose amount is
not a finite whole number is a malformed callback (400), never a server error."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from services.payout.adapters.orm import installments, payment_anomalies
from services.payout.domain.model import Outcome
from services.payout.service_layer import submission
from services.payout.service_layer.outcomes import apply_outcomes
from shared.webhook_signing import dev_secret, signed_headers
from tests.payout.adapters.test_bank_answers import camt054
from tests.payout.harness import AGRIBANK, VCB, accounts, intake_events, people
from tests.payout.test_failures import attempt_ids

PERIOD = "2031-05"


async def submitted(payout, sandbox, count: int):
    stack = await payout(run_workers=False, status_inquiry_after_seconds=30.0)
    persons = people(count, bank_bin=VCB)
    await sandbox.seed_accounts(accounts(persons))
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
    await stack.workers.verify_once()
    await stack.start_cycle(PERIOD)
    await sandbox.set_faults(callback_delay_ms=60_000)
    assert await stack.workers.submit_once()
    return stack, persons


class TestStatusAmounts:
    @pytest.mark.parametrize("reported", [None, 1])
    async def test_settled_status_without_our_amount_does_not_settle(
        self, payout, sandbox, reported
    ):
        stack, _ = await submitted(payout, sandbox, 1)
        [e2e] = await attempt_ids(stack)
        outcome = Outcome(
            end_to_end_id=e2e,
            status="SETTLED",
            amount=reported,
            reason_code=None,
            bank_reference="FT1",
            occurred_at=datetime.now(UTC),
        )
        await stack.workers.in_transaction(
            lambda uow: apply_outcomes(uow, VCB, [outcome], stack.workers.policy)
        )
        assert await stack.states(PERIOD) == {"SUBMITTED": 1}
        async with stack.runtime.session_factory() as session:
            kinds = (await session.execute(select(payment_anomalies.c.kind))).scalars().all()
        assert kinds == ["AMOUNT_MISSING" if reported is None else "AMOUNT_MISMATCH"]

    async def test_inquiry_reason_longer_than_the_column_is_cut_not_wedging_the_batch(
        self, payout, sandbox
    ):
        stack, _ = await submitted(payout, sandbox, 1)
        [e2e] = await attempt_ids(stack)
        claimed = await stack.workers.in_transaction(
            lambda uow: submission.claim_batch(uow, 30.0, sweep=True)
        )
        if claimed is None:  # not yet due: make it due the way the sweeper finds it
            from sqlalchemy import update

            from services.payout.adapters.orm import batches

            async with stack.runtime.session_factory() as session, session.begin():
                await session.execute(update(batches).values(next_attempt_at=datetime.now(UTC)))
            claimed = await stack.workers.in_transaction(
                lambda uow: submission.claim_batch(uow, 30.0, sweep=True)
            )
        reason = "Ngân hàng từ chối giao dịch vì lý do nội bộ " * 12
        findings = submission.InquiryFindings(
            [
                Outcome(
                    end_to_end_id=e2e,
                    status="FAILED",
                    amount=None,
                    reason_code=reason,
                    bank_reference="Ư" * 80,
                    occurred_at=datetime.now(UTC),
                )
            ],
            [],
            [],
            [],
        )
        await stack.workers.in_transaction(
            lambda uow: submission.record_inquiry(
                uow,
                claimed,
                findings,
                stack.workers.policy,
                retry_base=0.05,
                retry_cap=0.5,
                inquiry_after_seconds=30.0,
            )
        )
        async with stack.runtime.session_factory() as session:
            row = (await session.execute(select(installments))).mappings().one()
        assert row["state"] == "FAILED" and row["reason_code"] == reason[:40]
        assert len(row["reason_text"]) <= 300


class TestCamt054Callback:
    @pytest.mark.parametrize("amount", ["Infinity", "NaN", "sNaN", "1E+999999999"])
    async def test_amount_not_finite_is_an_unreadable_entry_that_settles_nothing(
        self, payout, sandbox, amount
    ):
        stack = await payout(run_workers=False)
        body = camt054(amount)
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            response = await client.post(
                f"/v1/webhooks/iso/{AGRIBANK}",
                content=body,
                headers={
                    **signed_headers(AGRIBANK, dev_secret(AGRIBANK), body),
                    "Content-Type": "application/xml",
                },
            )
        # The notification is taken (its readable entries would apply); this entry is reported.
        assert response.status_code == 200, response.text
        assert (response.json()["applied"], response.json()["unreadable"]) == (0, 1)
