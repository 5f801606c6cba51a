"""Ambiguous answers the sandbox injects into requests that move money: the request is taken,
then the caller gets a gateway error, an unreadable body, its answer late, or (on a resend) a
409; a fault budget limits how many requests are hit."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.sandbox.test_sandbox_banks import VCB, batch, post_batch, seed, transfers
from tests.sandbox.test_sandbox_files_and_cash import cash_list


class TestAmbiguousAnswers:
    @pytest.mark.parametrize("status", [502, 504])
    async def test_gateway_error_after_the_batch_was_taken(self, sandbox, status: int) -> None:
        accounts = await seed(sandbox, 3)
        await sandbox.admin.set_faults(error_after_accept_rate=1, error_after_accept_status=status)
        answer = await post_batch(sandbox, batch("G1", transfers(accounts, prefix="G")))
        assert answer.status_code == status
        status_answer = await sandbox.http.get(f"/banks/{VCB}/transfers/G000000")
        assert status_answer.status_code == 200  # the bank has it, whatever the gateway said
        await sandbox.callbacks.wait_for(["G000000", "G000001", "G000002"])
        assert (await sandbox.admin.ledger())["credits"] == 3

    async def test_unreadable_2xx_body_after_the_batch_was_taken(self, sandbox) -> None:
        accounts = await seed(sandbox, 2)
        await sandbox.admin.set_faults(unreadable_answer_rate=1)
        answer = await post_batch(sandbox, batch("U1", transfers(accounts, prefix="U")))
        assert answer.status_code == 202
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(answer.content)
        assert (await sandbox.http.get(f"/banks/{VCB}/transfers/U000001")).status_code == 200

    async def test_slow_answer_comes_after_the_batch_was_taken(self, sandbox) -> None:
        accounts = await seed(sandbox, 1)
        await sandbox.admin.set_faults(slow_answer_rate=1, slow_answer_seconds=0.6)
        started = time.monotonic()
        answer = await post_batch(sandbox, batch("S1", transfers(accounts, prefix="S")))
        assert answer.status_code == 202 and time.monotonic() - started >= 0.6
        # Name inquiries and status reads are not slowed.
        started = time.monotonic()
        await sandbox.http.get(f"/banks/{VCB}/transfers/S000000")
        assert time.monotonic() - started < 0.5

    async def test_resend_of_a_taken_batch_is_refused_as_a_duplicate(self, sandbox) -> None:
        accounts = await seed(sandbox, 2)
        body = batch("R1", transfers(accounts, prefix="R"))
        await sandbox.admin.set_faults(conflict_on_resend_rate=1)
        first = await post_batch(sandbox, body)
        assert first.status_code == 202  # a first send is never a duplicate
        again = await post_batch(sandbox, body)
        assert (again.status_code, again.json()) == (409, {"code": "DUPLICATE_REQUEST"})
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["duplicates"]) == (2, 0)
        entries = (await sandbox.admin.ledger_entries(limit=2))["entries"]
        assert [e["times_received"] for e in entries] == [1, 1]

    async def test_fault_budget_hits_only_the_first_cash_list(self, sandbox) -> None:
        await sandbox.admin.set_faults(error_after_accept_rate=1, fault_budget=1)
        answers = [
            await sandbox.http.post(
                "/vnpost/cash-lists",
                json=cash_list(f"FB{n}", "08869", [(f"FB{n}", 1000)]),
                headers={"Idempotency-Key": f"FB{n}"},
            )
            for n in range(3)
        ]
        assert [a.status_code for a in answers] == [504, 202, 202]
        for n in range(3):
            assert (await sandbox.http.get(f"/vnpost/items/FB{n}")).status_code == 200

    async def test_new_faults_validated(self, sandbox) -> None:
        assert (
            await sandbox.http.put("/admin/faults", json={"error_after_accept_status": 500})
        ).status_code == 422
        assert (
            await sandbox.http.put("/admin/faults", json={"fault_budget": -1})
        ).status_code == 422
