"""What camt.054 notifications written to the standard do to the ledger, through the signed ISO
callback route: a batch booking settles each of its transfers once, a pending entry moves
nothing, a reversal or a late return credit takes a settled payment back, and an unreadable
entry is reported while the readable ones apply."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from services.payout.adapters.orm import installments, payment_anomalies
from shared.webhook_signing import dev_secret, signed_headers
from tests.payout.harness import AGRIBANK, accounts, intake_events, people, verified

PERIOD = "2031-04"
NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"


def tx(
    item: dict[str, Any],
    amount: int | None = None,
    ccy: str = "VND",
    return_reason: str | None = None,
    direction: str = "DBIT",
) -> str:
    reason = f"<RtrInf><Rsn><Cd>{return_reason}</Cd></Rsn></RtrInf>" if return_reason else ""
    return (
        f"<TxDtls><Refs><EndToEndId>{item['end_to_end_id']}</EndToEndId></Refs>"
        f'<Amt Ccy="{ccy}">{item["amount"] if amount is None else amount}</Amt>'
        f"<CdtDbtInd>{direction}</CdtDbtInd>{reason}</TxDtls>"
    )


def entry(
    reference: str | None,
    details: list[str],
    total: int,
    *,
    status: str = "BOOK",
    direction: str = "DBIT",
    reversal: bool = False,
    sub_family: str = "ESCT",
    ccy: str = "VND",
    batch: bool = False,
) -> str:
    btch = (
        (
            f'<Btch><NbOfTxs>{len(details)}</NbOfTxs><TtlAmt Ccy="{ccy}">{total}</TtlAmt>'
            f"<CdtDbtInd>{direction}</CdtDbtInd></Btch>"
        )
        if batch
        else ""
    )
    return (
        f'<Ntry><Amt Ccy="{ccy}">{total}</Amt><CdtDbtInd>{direction}</CdtDbtInd>'
        + ("<RvslInd>true</RvslInd>" if reversal else "")
        + f"<Sts><Cd>{status}</Cd></Sts>"
        + ("<BookgDt><DtTm>2031-04-25T08:00:00+07:00</DtTm></BookgDt>" if status == "BOOK" else "")
        + (f"<AcctSvcrRef>{reference}</AcctSvcrRef>" if reference else "")
        + f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly>"
        f"</Domn></BkTxCd><NtryDtls>{btch}{''.join(details)}</NtryDtls></Ntry>"
    )


def notification(message_id: str, entries: list[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{NS}"><BkToCstmrDbtCdtNtfctn>'
        f"<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>2031-04-25T08:01:00+07:00</CreDtTm></GrpHdr>"
        f"<Ntfctn><Id>{message_id}-1</Id><Acct><Id><Othr><Id>0011000123456</Id></Othr></Id></Acct>"
        + "".join(entries)
        + "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


async def scheduled(payout, sandbox, count: int, **settings: Any):
    """A cycle of `count` payments at the ISO bank, created but never sent: the notifications
    below are the only news."""
    stack = await payout(run_workers=False, **settings)
    persons = people(count, bank_bin=AGRIBANK)
    await sandbox.seed_accounts(accounts(persons))
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
    stack.start_workers()
    await verified(stack, persons, timeout=120)
    stack.stop.set()
    await stack.start_cycle(PERIOD)
    async with stack.client() as api:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"period": PERIOD, "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await api.get("/v1/installments", params=params)).json()
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert len(items) == count
    return stack, items


async def post(stack, body: bytes) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        response = await client.post(
            f"/v1/webhooks/iso/{AGRIBANK}",
            content=body,
            headers=signed_headers(AGRIBANK, dev_secret(AGRIBANK), body),
        )
    assert response.status_code == 200, response.text
    return response.json()


async def ledger(stack) -> tuple[dict[str, tuple[str, str | None]], list[str]]:
    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(installments.c.id, installments.c.state, installments.c.reason_code).where(
                    installments.c.period == PERIOD
                )
            )
        ).all()
        kinds = (
            (
                await session.execute(
                    select(payment_anomalies.c.kind).order_by(payment_anomalies.c.id)
                )
            )
            .scalars()
            .all()
        )
    return {f"PAY-{row.id}-1": (row.state, row.reason_code) for row in rows}, list(kinds)


class TestBatchBooking:
    async def test_batch_booked_debit_of_2000_settles_each_once(self, payout, sandbox):
        stack, items = await scheduled(payout, sandbox, 2000)
        total = sum(i["amount"] for i in items)
        body = notification(
            "NTF-BATCH-2000", [entry("FT3104252000", [tx(i) for i in items], total, batch=True)]
        )

        first = await post(stack, body)
        again = await post(stack, body)

        assert (first["applied"], first["replayed"]) == (2000, 0)
        assert (again["applied"], again["replayed"]) == (0, 2000)
        assert await stack.states(PERIOD) == {"SETTLED": 2000}
        assert (await stack.outbox_types())["payment-settled"] == 2000

    async def test_batch_whose_count_differs_settles_nothing(self, payout, sandbox):
        stack, items = await scheduled(payout, sandbox, 3)
        details = [tx(i) for i in items]
        wrong = entry("FT3104250003", details, sum(i["amount"] for i in items), batch=True).replace(
            "<NbOfTxs>3</NbOfTxs>", "<NbOfTxs>4</NbOfTxs>"
        )
        answer = await post(stack, notification("NTF-BATCH-WRONG", [wrong]))
        assert (answer["applied"], answer["unreadable"]) == (0, 1)
        assert await stack.states(PERIOD) == {"SCHEDULED": 3}
        assert (await ledger(stack))[1] == ["UNREADABLE_BATCH_MISMATCH"]


class TestEntryStatuses:
    async def test_pending_entry_moves_nothing_until_it_is_booked(self, payout, sandbox):
        stack, [item] = await scheduled(payout, sandbox, 1)
        pending = await post(
            stack,
            notification(
                "NTF-PDNG", [entry("FT310425P1", [tx(item)], item["amount"], status="PDNG")]
            ),
        )
        assert (pending["applied"], pending["pending"]) == (0, 1)
        assert await stack.states(PERIOD) == {"SCHEDULED": 1}
        info = await post(
            stack,
            notification(
                "NTF-INFO", [entry("FT310425P1", [tx(item)], item["amount"], status="INFO")]
            ),
        )
        assert info["received"] == 0 and await stack.states(PERIOD) == {"SCHEDULED": 1}
        booked = await post(
            stack, notification("NTF-BOOK", [entry("FT310425P1", [tx(item)], item["amount"])])
        )
        assert booked["applied"] == 1
        assert await stack.states(PERIOD) == {"SETTLED": 1}

    async def test_unreadable_entry_is_reported_and_the_readable_ones_apply(self, payout, sandbox):
        stack, items = await scheduled(payout, sandbox, 3)
        body = notification(
            "NTF-MIXED",
            [
                entry("FT310425M1", [tx(items[0])], items[0]["amount"]),
                entry("FT310425M2", [tx(items[1], ccy="EUR")], items[1]["amount"], ccy="EUR"),
                entry(
                    "FT310425M3", [tx(items[2], amount=items[2]["amount"])], items[2]["amount"]
                ).replace(f">{items[2]['amount']}<", f">{items[2]['amount']}.5<"),
            ],
        )
        answer = await post(stack, body)
        assert (answer["applied"], answer["unreadable"]) == (1, 2)
        states, kinds = await ledger(stack)
        assert [states[i["end_to_end_id"]][0] for i in items] == [
            "SETTLED",
            "SCHEDULED",
            "SCHEDULED",
        ]
        assert kinds == ["UNREADABLE_CURRENCY_NOT_VND", "UNREADABLE_AMOUNT_FRACTION"]
        again = await post(stack, body)
        assert again["replayed"] == 3 and (await ledger(stack))[1] == kinds


class TestMoneyTakenBack:
    async def test_reversal_of_a_settled_payment_returns_it_and_is_flagged(self, payout, sandbox):
        stack, [item] = await scheduled(payout, sandbox, 1)
        await post(stack, notification("NTF-R1", [entry("FT310425R1", [tx(item)], item["amount"])]))
        reversed_ = await post(
            stack,
            notification(
                "NTF-R2",
                [
                    entry(
                        "FT310426R2",
                        [tx(item, direction="CRDT")],
                        item["amount"],
                        direction="CRDT",
                        reversal=True,
                    )
                ],
            ),
        )
        assert reversed_["applied"] == 1
        states, kinds = await ledger(stack)
        assert states[item["end_to_end_id"]] == ("RETURNED", "REVERSED")
        assert kinds == ["REVERSED_AFTER_SETTLEMENT"]
        types = await stack.outbox_types()
        assert (types["payment-settled"], types["payment-returned"]) == (1, 1)

    async def test_reversal_before_settlement_fails_the_payment(self, payout, sandbox):
        stack, [item] = await scheduled(payout, sandbox, 1)
        await post(
            stack,
            notification(
                "NTF-R3",
                [
                    entry(
                        "FT310426R3",
                        [tx(item, direction="CRDT", return_reason="AC06")],
                        item["amount"],
                        direction="CRDT",
                        reversal=True,
                    )
                ],
            ),
        )
        states, _ = await ledger(stack)
        assert states[item["end_to_end_id"]] == ("FAILED", "AC06")
        assert "payment-settled" not in await stack.outbox_types()

    async def test_return_credit_days_later_returns_the_payment(self, payout, sandbox):
        stack, [item] = await scheduled(payout, sandbox, 1)
        await post(stack, notification("NTF-T1", [entry(None, [tx(item)], item["amount"])]))
        answer = await post(
            stack,
            notification(
                "NTF-T2",
                [
                    entry(
                        "FT310430T2",
                        [tx(item, direction="CRDT", return_reason="AC04")],
                        item["amount"],
                        direction="CRDT",
                        sub_family="RRTN",
                    )
                ],
            ),
        )
        assert answer["applied"] == 1
        states, kinds = await ledger(stack)
        assert states[item["end_to_end_id"]] == ("RETURNED", "AC04") and kinds == []
        assert (await stack.outbox_types())["payment-returned"] == 1


def status_report(
    report_id: str,
    original: str,
    group: str,
    group_reason: str | None,
    transactions: list[tuple[str, str, str | None]],
    version: str = "10",
) -> bytes:
    reason = f"<StsRsnInf><Rsn><Cd>{group_reason}</Cd></Rsn></StsRsnInf>" if group_reason else ""
    txs = "".join(
        f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>{status}</TxSts>"
        + (f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>" if code else "")
        + "</TxInfAndSts>"
        for e2e, status, code in transactions
    )
    block = (
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{original}</OrgnlPmtInfId>{txs}</OrgnlPmtInfAndSts>"
        if txs
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
        f'pain.002.001.{version}"><CstmrPmtStsRpt><GrpHdr><MsgId>{report_id}</MsgId>'
        f"<CreDtTm>2031-04-25T08:01:00+07:00</CreDtTm></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>{original}"
        f"</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId><GrpSts>{group}</GrpSts>{reason}"
        f"</OrgnlGrpInfAndSts>{block}</CstmrPmtStsRpt></Document>"
    ).encode()


async def batch_ids(stack) -> dict[str, str | None]:
    from services.payout.adapters.orm import payment_attempts

    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(payment_attempts.c.end_to_end_id, payment_attempts.c.batch_id)
            )
        ).all()
    return dict(rows)


class TestStatusReports:
    async def test_file_rejected_at_group_level_fails_each_of_its_payments(self, payout, sandbox):
        stack, items = await scheduled(payout, sandbox, 3)
        [batch_id] = set((await batch_ids(stack)).values())
        assert batch_id
        body = status_report("STS-GRP-1", batch_id, "RJCT", "FF01", [], version="03")
        answer = await post(stack, body)
        assert answer["applied"] == 3
        states, _ = await ledger(stack)
        assert {states[i["end_to_end_id"]] for i in items} == {("FAILED", "FF01")}
        assert (await post(stack, body))["replayed"] == 1

    async def test_rejected_transactions_fail_and_accepted_ones_wait_for_their_booking(
        self, payout, sandbox
    ):
        stack, items = await scheduled(payout, sandbox, 3)
        [batch_id] = set((await batch_ids(stack)).values())
        answer = await post(
            stack,
            status_report(
                "STS-PART-1",
                batch_id,
                "PART",
                None,
                [
                    (items[0]["end_to_end_id"], "ACSC", None),
                    (items[1]["end_to_end_id"], "RJCT", "AC04"),
                    (items[2]["end_to_end_id"], "ACSP", None),
                ],
            ),
        )
        assert answer["applied"] == 1
        states, _ = await ledger(stack)
        assert [states[i["end_to_end_id"]] for i in items] == [
            ("SCHEDULED", None),
            ("FAILED", "AC04"),
            ("SCHEDULED", None),
        ]


async def channels(stack) -> list[str]:
    from services.payout.adapters.orm import payment_attempts

    async with stack.runtime.session_factory() as session:
        return list((await session.execute(select(payment_attempts.c.channel))).scalars().all())


class TestNoVerdictNoCash:
    """The cash fallback pays a period only once the bank has said the transfer will not be
    executed; a reversal or a refusal as a duplicate says no such thing."""

    async def test_reversal_of_another_amount_moves_nothing_and_the_booking_settles_once(
        self, payout, sandbox
    ):
        stack, [item] = await scheduled(payout, sandbox, 1, permanent_failure_fallback="cash")
        await post(
            stack,
            notification(
                "NTF-V1",
                [
                    entry(
                        "FT310426V1",
                        [tx(item, amount=1000, direction="CRDT", return_reason="AC04")],
                        1000,
                        direction="CRDT",
                        reversal=True,
                    )
                ],
            ),
        )
        states, kinds = await ledger(stack)
        assert states[item["end_to_end_id"]][0] == "SCHEDULED" and kinds == ["AMOUNT_MISMATCH"]
        await post(stack, notification("NTF-V2", [entry("FT310426V2", [tx(item)], item["amount"])]))
        states, _ = await ledger(stack)
        assert states[item["end_to_end_id"]] == ("SETTLED", None)
        assert "CASH_POST_OFFICE" not in await channels(stack)

    async def test_reversal_of_an_unseen_booking_fails_without_paying_cash(self, payout, sandbox):
        stack, [item] = await scheduled(payout, sandbox, 1, permanent_failure_fallback="cash")
        await post(
            stack,
            notification(
                "NTF-V3",
                [
                    entry(
                        "FT310426V3",
                        [tx(item, direction="CRDT", return_reason="AC04")],
                        item["amount"],
                        direction="CRDT",
                        reversal=True,
                    )
                ],
            ),
        )
        states, _ = await ledger(stack)
        assert states[item["end_to_end_id"]] == ("FAILED", "AC04")
        assert "CASH_POST_OFFICE" not in await channels(stack)

    async def test_a_file_refused_as_a_duplicate_fails_none_of_its_payments(self, payout, sandbox):
        stack, items = await scheduled(payout, sandbox, 2, permanent_failure_fallback="cash")
        [batch_id] = set((await batch_ids(stack)).values())
        await post(stack, status_report("STS-DUP-1", batch_id, "RJCT", "DU01", []))
        states, kinds = await ledger(stack)
        assert {states[i["end_to_end_id"]][0] for i in items} == {"SCHEDULED"}
        assert kinds == ["DUPLICATE_REJECTION"] * 2
        assert "CASH_POST_OFFICE" not in await channels(stack)
