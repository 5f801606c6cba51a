"""How the channels read what a counterparty answers to a request that moves money: only an
explicit refusal of the request is final; credentials, duplicates, gateway errors and bodies
that cannot be read leave the payment's fate unknown (ask for its status); status answers and
camt.054 amounts are read exactly or refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.payout.adapters.banks import (
    VNPOST,
    BankChannelRegistry,
    PermanentBankError,
    TransientBankError,
    UnknownOutcome,
    describe,
)
from services.payout.adapters.banks.iso20022 import parse_camt054
from tests.payout.adapters.adapter_helpers import (
    AGRIBANK,
    VCB,
    adapter_settings,
    batch_of,
    instruction,
)
from tests.support.sandbox import free_port


@dataclass
class Canned:
    """What the stub counterparty answers next, and the requests it saw."""

    status: int = 202
    body: bytes = b'{"accepted": [], "rejected": []}'
    seen: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def counterparty() -> AsyncIterator[tuple[str, Canned]]:
    """A real HTTP server that answers every request with the canned status and body."""
    canned = Canned()

    async def answer(request: Request) -> Response:
        canned.seen.append(f"{request.method} {request.url.path}")
        return Response(canned.body, status_code=canned.status, media_type="application/json")

    port = free_port()
    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", canned
    server.should_exit = True
    await task


@pytest_asyncio.fixture
async def channels(counterparty) -> AsyncIterator[BankChannelRegistry]:
    async with BankChannelRegistry(adapter_settings(counterparty[0])) as registry:
        yield registry


def bank_batch(bin_: str = VCB):
    return batch_of(bin_, [instruction("0011001234567", 1_500_000, bin_=bin_)])


def cash_batch():
    return batch_of(VNPOST, [instruction(None, 900_000, bin_=None, commune_code="09154")])


ANSWERS = [
    # (status, body, what the caller must do next)
    (401, b'{"code": "UNAUTHORIZED"}', TransientBankError),  # our credentials, not the payment
    (403, b'{"code": "FORBIDDEN"}', TransientBankError),
    (409, b'{"code": "DUPLICATE_REQUEST"}', UnknownOutcome),  # the bank has it: ask
    (404, b'{"code": "NOT_FOUND"}', UnknownOutcome),
    (502, b"<html>bad gateway</html>", UnknownOutcome),
    (504, b"", UnknownOutcome),
    (202, b'{"accepted": ["E1"', UnknownOutcome),  # taken, but the answer cannot be read
    (200, b"[1, 2]", UnknownOutcome),
    (503, b'{"code": "SERVICE_UNAVAILABLE"}', TransientBankError),
    (422, b'{"code": "CONTROL_TOTALS_MISMATCH"}', PermanentBankError),
]


class TestMoneyMovingAnswers:
    @pytest.mark.parametrize(("status", "body", "expected"), ANSWERS)
    async def test_json_bank_answer(self, counterparty, channels, status, body, expected) -> None:
        _, canned = counterparty
        canned.status, canned.body = status, body
        with pytest.raises(expected):
            await channels.channel(VCB).submit_batch(bank_batch())

    @pytest.mark.parametrize(("status", "body", "expected"), ANSWERS)
    async def test_iso_bank_answer(self, counterparty, channels, status, body, expected) -> None:
        _, canned = counterparty
        canned.status, canned.body = status, body
        with pytest.raises(expected):
            await channels.channel(AGRIBANK).submit_batch(bank_batch(AGRIBANK))

    @pytest.mark.parametrize(("status", "body", "expected"), ANSWERS[:-1])
    async def test_cash_list_answer_leaves_its_items_in_doubt_or_unsent(
        self, counterparty, channels, status, body, expected
    ) -> None:
        _, canned = counterparty
        canned.status, canned.body = status, body
        batch = cash_batch()
        result = await channels.channel(VNPOST).submit_batch(batch)
        e2e = batch.items[0].end_to_end_id
        assert result.accepted == () and result.rejected == ()
        if expected is UnknownOutcome:
            assert result.in_doubt == (e2e,) and result.not_sent == ()
        else:
            assert result.not_sent == (e2e,) and result.in_doubt == ()

    async def test_a_refused_cash_list_rejects_its_items_with_the_code(
        self, counterparty, channels
    ) -> None:
        _, canned = counterparty
        canned.status, canned.body = 422, b'{"code": "CONTROL_TOTALS_MISMATCH"}'
        batch = cash_batch()
        result = await channels.channel(VNPOST).submit_batch(batch)
        assert result.rejected == ((batch.items[0].end_to_end_id, "CONTROL_TOTALS_MISMATCH"),)

    async def test_long_reason_in_a_rejection_is_kept_whole_for_the_service_to_fit(
        self, counterparty, channels
    ) -> None:
        _, canned = counterparty
        batch = bank_batch()
        e2e = batch.items[0].end_to_end_id
        reason = "Ư" * 90
        canned.body = f'{{"accepted": [], "rejected": [{{"end_to_end_id": "{e2e}", "reason_code": "{reason}"}}]}}'.encode()
        result = await channels.channel(VCB).submit_batch(batch)
        assert result.rejected == ((e2e, "Ư" * 90),)


class TestReasons:
    def test_only_known_payment_level_codes_are_permanent(self) -> None:
        assert describe("AC04").permanent and describe("MD07").permanent
        assert not describe("ZZ99").permanent  # unknown: never a verdict on the payment
        assert not describe(None).permanent
        assert not describe("AM05").permanent  # a duplicate: the bank has the payment
        assert not describe("HTTP_409").permanent


class TestStatusAnswers:
    @pytest.mark.parametrize("amount", ["null", '"1500000"', "1500000.0", "true", "1e30"])
    async def test_status_amount_that_is_not_whole_vnd_is_no_amount(
        self, counterparty, channels, amount
    ) -> None:
        _, canned = counterparty
        canned.status = 200
        canned.body = f'{{"end_to_end_id": "E1", "status": "SETTLED", "amount": {amount}, "bank_reference": "FT1"}}'.encode()
        status = await channels.channel(VCB).payment_status("E1")
        assert status.status == "SETTLED" and status.amount is None


def camt054(amount: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>M1</MsgId><CreDtTm>2031-05-05T01:00:00Z</CreDtTm></GrpHdr>
<Ntfctn><Id>N1</Id><Acct><Id><Othr><Id>1</Id></Othr></Id></Acct>
<Ntry><NtryRef>EV1</NtryRef><Amt Ccy="VND">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd>
<Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>2031-05-05T01:00:00Z</DtTm></BookgDt>
<BkTxCd><Prtry><Cd>SETTLED</Cd></Prtry></BkTxCd>
<NtryDtls><TxDtls><Refs><EndToEndId>PAY-1-1</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>""".encode()


class TestCamt054Amounts:
    @pytest.mark.parametrize(
        "amount", ["Infinity", "-Infinity", "NaN", "sNaN", "1E+999999999", "9" * 40]
    )
    def test_amount_that_is_not_a_finite_whole_vnd_is_an_unreadable_entry(
        self, amount: str
    ) -> None:
        _, [outcome] = parse_camt054(camt054(amount))
        assert (outcome.status, outcome.reason_code, outcome.amount) == (
            "UNREADABLE",
            "AMOUNT_INVALID",
            0,
        )

    def test_whole_amount_read_exactly(self) -> None:
        _, outcomes = parse_camt054(camt054("1500000"))
        assert outcomes[0].amount == 1_500_000
