"""Reconciliation matches exactly: whole-VND amounts read without rounding, a line matched by
counterparty and end-to-end id together, and a duplicate credit shown as its own line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from services.payout.adapters.banks._http import CounterpartyHttp
from services.payout.adapters.banks.base import PermanentBankError
from services.payout.adapters.banks.napas import NapasChannel
from services.payout.adapters.banks.vnpost import VnpostChannel
from services.payout.adapters.orm import payment_attempts
from services.payout.domain.money import InvalidAmount, whole_vnd, whole_vnd_text
from services.payout.domain.reconciliation import BankEntry, LedgerEntry, match, summarise
from services.payout.service_layer.reconciliation import reconcile
from shared.clock import utcnow
from shared.periods import vietnam_date
from shared.uow import unit_of_work
from tests.payout.harness import (
    BIDV,
    VCB,
    PayoutStack,
    accounts,
    intake_events,
    payout_settings,
    people,
    verified,
)


class TestWholeVnd:
    @pytest.mark.parametrize(
        "value",
        [
            1_500_000.9,
            1_500_000.0,
            "1500000",
            "1500000.9",
            True,
            None,
            -1,
            float("inf"),
            float("nan"),
            10**18,
        ],
    )
    def test_json_amount_that_is_not_a_whole_vnd_integer_is_refused(self, value):
        with pytest.raises(InvalidAmount):
            whole_vnd(value)

    def test_json_integer_is_read_exactly(self):
        assert whole_vnd(1_500_000) == 1_500_000 and whole_vnd(0) == 0

    @pytest.mark.parametrize(
        "text",
        [
            "1500000.9",
            "1500000.01",
            "Infinity",
            "-Infinity",
            "NaN",
            "sNaN",
            "1E+6",
            "-5",
            " 5",
            "",
            "1_000",
            "99999999999999999999",
        ],
    )
    def test_text_amount_with_a_fraction_or_not_finite_is_refused(self, text):
        with pytest.raises(InvalidAmount):
            whole_vnd_text(text)

    def test_text_amount_with_a_zero_fraction_is_whole(self):
        assert whole_vnd_text("1500000") == 1_500_000 and whole_vnd_text("1500000.00") == 1_500_000


def _json_bank(entries: list[dict]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=orjson.dumps({"entries": entries}))

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


class TestStatementAmounts:
    @pytest.mark.parametrize("amount", [1_500_000.9, "1500000", "1500000.9", 1e20])
    async def test_bank_statement_amount_not_whole_vnd_refuses_the_statement(self, amount):
        line = {
            "end_to_end_id": "PAY-1-1",
            "amount": amount,
            "value_date": "2031-03-05",
            "status": "CREDITED",
        }
        async with _json_bank([line]) as client:
            channel = NapasChannel(VCB, CounterpartyHttp(client, "http://bank", VCB), "secret")
            with pytest.raises(PermanentBankError) as caught:
                await channel.statement(date(2031, 3, 5))
        assert caught.value.code == "INVALID_STATEMENT_AMOUNT"

    async def test_post_office_statement_amount_not_whole_vnd_refuses_the_statement(self):
        line = {
            "end_to_end_id": "PAY-1-2",
            "amount": 1_500_000.5,
            "value_date": "2031-03-05",
            "status": "PAID",
            "receipt_number": "R1",
        }
        async with _json_bank([line]) as client:
            channel = VnpostChannel(CounterpartyHttp(client, "http://post", "VNPOST"), "secret")
            with pytest.raises(PermanentBankError) as caught:
                await channel.statement(date(2031, 3, 5))
        assert caught.value.code == "INVALID_STATEMENT_AMOUNT"

    async def test_whole_amounts_are_read_as_integers(self):
        line = {
            "end_to_end_id": "PAY-1-1",
            "amount": 1_500_000,
            "value_date": "2031-03-05",
            "status": "CREDITED",
        }
        async with _json_bank([line]) as client:
            channel = NapasChannel(VCB, CounterpartyHttp(client, "http://bank", VCB), "secret")
            [entry] = await channel.statement(date(2031, 3, 5))
        assert entry.amount == 1_500_000 and type(entry.amount) is int


class TestMatching:
    def test_our_reference_on_another_counterpartys_statement_is_not_matched(self):
        ours = LedgerEntry("PAY-1-1", 1, 100, "SETTLED", BIDV)
        lines = match(VCB, [BankEntry("PAY-1-1", 100, "CREDITED", "FT1")], {"PAY-1-1": ours}, {})
        assert [line.kind for line in lines] == ["UNKNOWN_TO_US"]

    def test_duplicate_credit_is_its_own_line_and_unbalances_the_run(self):
        ours = LedgerEntry("PAY-1-1", 1, 100, "SETTLED", VCB)
        statement = [
            BankEntry("PAY-1-1", 100, "CREDITED", "FT1"),
            BankEntry("PAY-1-1", 100, "CREDITED", "FT2"),
        ]
        lines = match(VCB, statement, {"PAY-1-1": ours}, {"PAY-1-1": ours})
        assert [line.kind for line in lines] == ["MATCHED", "DUPLICATE"]
        summary = summarise(lines, statement, ledger_total=100)
        assert summary["counts"]["DUPLICATE"] == 1 and summary["sums"]["DUPLICATE"] == 100
        assert summary["statement_total"] == 200 and summary["balanced"] is False


@pytest.fixture(params=["postgresql", "sqlite"])
async def any_stack(
    request, pg_database, kafka_bootstrap, tmp_path: Path, api_port, sandbox_server, sandbox
):
    if request.param == "postgresql":
        url, kafka = await pg_database("payout"), kafka_bootstrap
    else:
        url = kafka = None
    stack = PayoutStack(
        payout_settings(url, kafka, tmp_path, api_port, sandbox_server.url), sandbox_server.url
    )
    await stack.start()
    try:
        yield stack
    finally:
        await stack.close()


class TestReconciliationRun:
    async def test_duplicate_and_foreign_lines_are_shown_and_never_matched(
        self, any_stack, sandbox
    ):
        stack = any_stack
        vcb, bidv = people(2, bank_bin=VCB), people(1, bank_bin=BIDV)
        await sandbox.seed_accounts(accounts(vcb + bidv))
        await stack.feed([e for p in vcb + bidv for e in intake_events(p, start_period="2031-01")])
        await verified(stack, vcb + bidv)
        await stack.start_cycle("2031-03")
        await stack.wait_complete("2031-03")
        async with stack.runtime.session_factory() as session:
            attempts = {
                row.counterparty: row
                for row in (
                    await session.execute(
                        select(
                            payment_attempts.c.end_to_end_id,
                            payment_attempts.c.amount,
                            payment_attempts.c.counterparty,
                        ).order_by(payment_attempts.c.id)
                    )
                ).all()
            }
            vcb_lines = (
                await session.execute(
                    select(payment_attempts.c.end_to_end_id, payment_attempts.c.amount)
                    .where(payment_attempts.c.counterparty == VCB)
                    .order_by(payment_attempts.c.id)
                )
            ).all()
        first, second = vcb_lines
        foreign = attempts[BIDV]
        statement = [
            BankEntry(first.end_to_end_id, int(first.amount), "CREDITED", "FT1"),
            BankEntry(first.end_to_end_id, int(first.amount), "CREDITED", "FT1-AGAIN"),
            BankEntry(second.end_to_end_id, int(second.amount), "CREDITED", "FT2"),
            BankEntry(foreign.end_to_end_id, int(foreign.amount), "CREDITED", "FT3"),
        ]
        async with unit_of_work(
            stack.runtime.session_factory, stack.runtime.outbox, "tests"
        ) as uow:
            run_id, summary = await reconcile(uow, VCB, vietnam_date(utcnow()), statement, "tests")
        assert summary["counts"]["MATCHED"] == 2
        assert summary["counts"]["DUPLICATE"] == 1 and summary["counts"]["UNKNOWN_TO_US"] == 1
        assert summary["balanced"] is False
        async with stack.client() as client:
            shown = (
                await client.get(f"/v1/reconciliations/{run_id}", params={"kind": "DUPLICATE"})
            ).json()
        assert [(line["end_to_end_id"], line["bank_reference"]) for line in shown["lines"]] == [
            (first.end_to_end_id, "FT1-AGAIN")
        ]
