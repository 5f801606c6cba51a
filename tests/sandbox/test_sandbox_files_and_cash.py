"""The sandbox's ISO 20022 file bank and post office, over plain HTTP."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from lxml import etree

AGRIBANK = "970405"
PAIN = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002 = {"s": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"}


def pain001(
    message_id: str,
    rows: list[tuple[str, str, str]],
    nb: int | None = None,
    total: str | None = None,
) -> bytes:
    """A minimal valid pain.001.001.09: rows of (end-to-end id, account, amount text)."""
    transactions = "".join(
        f"""<CdtTrfTxInf><PmtId><EndToEndId>{e2e}</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="VND">{amount}</InstdAmt></Amt>
        <CdtrAgt><FinInstnId><BICFI>VBAAVNVX</BICFI></FinInstnId></CdtrAgt>
        <Cdtr><Nm>Trần Văn Hùng</Nm></Cdtr>
        <CdtrAcct><Id><Othr><Id>{account}</Id></Othr></Id></CdtrAcct></CdtTrfTxInf>"""
        for e2e, account, amount in rows
    )
    count = len(rows) if nb is None else nb
    control = total if total is not None else str(sum(Decimal(a) for _, _, a in rows))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{PAIN}"><CstmrCdtTrfInitn>
<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>2023-05-04T08:00:00Z</CreDtTm><NbOfTxs>{count}</NbOfTxs>
<CtrlSum>{control}</CtrlSum><InitgPty><Nm>BHXH Vinh Phuc</Nm></InitgPty></GrpHdr>
<PmtInf><PmtInfId>{message_id}</PmtInfId><PmtMtd>TRF</PmtMtd><ReqdExctnDt><Dt>2023-05-05</Dt></ReqdExctnDt>
<Dbtr><Nm>BHXH Vinh Phuc</Nm></Dbtr><DbtrAcct><Id><Othr><Id>3600201001234</Id></Othr></Id></DbtrAcct>
<DbtrAgt><FinInstnId><BICFI>VBAAVNVX</BICFI></FinInstnId></DbtrAgt>{transactions}</PmtInf>
</CstmrCdtTrfInitn></Document>""".encode()


async def post_file(sandbox, document: bytes):
    return await sandbox.http.post(
        f"/iso/{AGRIBANK}/files", content=document, headers={"Content-Type": "application/xml"}
    )


class TestIsoFiles:
    async def test_file_accepted_reported_and_notified(self, sandbox) -> None:
        await sandbox.admin.seed_accounts(
            [{"bin": AGRIBANK, "account_number": "A1", "holder_name": "Trần Văn Hùng"}]
        )
        document = pain001(
            "MSG1", [("T1", "A1", "150000"), ("T2", "NOPE", "250000"), ("T3", "A1", "10.5")]
        )

        answer = await post_file(sandbox, document)

        assert answer.status_code == 202
        assert answer.json() == {
            "message_id": "MSG1",
            "accepted": 2,
            "rejected": [{"end_to_end_id": "T3", "reason_code": "AM12"}],
        }
        outcomes = await sandbox.callbacks.wait_for(["T1", "T2"])
        assert sandbox.callbacks.rejections == []
        assert outcomes["T1"][0]["type"] == "SETTLED" and outcomes["T1"][0]["amount"] == 150000
        assert (outcomes["T2"][0]["type"], outcomes["T2"][0]["reason_code"]) == ("FAILED", "AC01")
        report = etree.fromstring(
            (await sandbox.http.get(f"/iso/{AGRIBANK}/files/MSG1/status")).content
        )
        assert (
            report.findtext("s:CstmrPmtStsRpt/s:OrgnlGrpInfAndSts/s:GrpSts", namespaces=PAIN002)
            == "PART"
        )
        statuses = {
            tx.findtext("s:OrgnlEndToEndId", namespaces=PAIN002): tx.findtext(
                "s:TxSts", namespaces=PAIN002
            )
            for tx in report.iterfind(".//s:TxInfAndSts", PAIN002)
        }
        assert statuses == {"T1": "ACSC", "T2": "RJCT", "T3": "RJCT"}
        status = (await sandbox.http.get(f"/iso/{AGRIBANK}/transfers/T1")).json()
        assert status["status"] == "SETTLED"
        day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
        statement = (await sandbox.http.get(f"/iso/{AGRIBANK}/statements/{day}")).json()
        assert statement["total_credited"] == 150000

    async def test_file_against_schema_refused(self, sandbox) -> None:
        broken = pain001("MSG2", [("T1", "A1", "150000")]).replace(b"<PmtMtd>TRF", b"<PmtMtd>XXX")
        answer = await post_file(sandbox, broken)
        assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_FILE")
        answer = await post_file(sandbox, b"<not-xml")
        assert answer.status_code == 400

    async def test_control_totals_checked_against_transactions(self, sandbox) -> None:
        for document in (
            pain001("MSG3", [("T1", "A1", "150000")], nb=2),
            pain001("MSG3", [("T1", "A1", "150000")], total="150001"),
        ):
            answer = await post_file(sandbox, document)
            assert (answer.status_code, answer.json()["code"]) == (422, "CONTROL_TOTALS_MISMATCH")
        assert (await sandbox.http.get(f"/iso/{AGRIBANK}/files/MSG3/status")).status_code == 404

    async def test_same_file_twice_credits_once(self, sandbox) -> None:
        await sandbox.admin.seed_accounts(
            [{"bin": AGRIBANK, "account_number": "A1", "holder_name": "X"}]
        )
        document = pain001("MSG4", [("T1", "A1", "150000")])
        await post_file(sandbox, document)
        await post_file(sandbox, document)
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"], ledger["duplicates"]) == (1, 150000, 0)

    async def test_file_refused_by_a_json_bank(self, sandbox) -> None:
        answer = await sandbox.http.post(
            "/iso/970436/files",
            content=pain001("M", [("T", "A", "1")]),
            headers={"Content-Type": "application/xml"},
        )
        assert answer.json()["code"] == "CHANNEL_NOT_SUPPORTED"


def cash_list(list_id: str, commune: str, items: list[tuple[str, int]], **overrides) -> dict:
    rows = [
        {
            "end_to_end_id": e2e,
            "beneficiary_name": "Phan Thị Mận",
            "amount": amount,
            "commune_code": commune,
        }
        for e2e, amount in items
    ]
    body = {
        "list_id": list_id,
        "period": "2023-05",
        "commune_code": commune,
        "control_count": len(rows),
        "control_sum": sum(r["amount"] for r in rows),
        "items": rows,
    }
    return {**body, **overrides}


class TestPostOffice:
    async def test_cash_paid_and_returned_with_confirmations(self, sandbox) -> None:
        await sandbox.http.put(
            "/admin/vnpost/outcomes", json=[{"end_to_end_id": "C2", "outcome": "REFUSED"}]
        )
        answer = await sandbox.http.post(
            "/vnpost/cash-lists",
            json=cash_list("L1", "08869", [("C1", 1_500_000), ("C2", 800_000)]),
        )
        assert answer.status_code == 202 and answer.json()["accepted"] == ["C1", "C2"]
        outcomes = await sandbox.callbacks.wait_for(["C1", "C2"])
        paid, returned = outcomes["C1"][0], outcomes["C2"][0]
        today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
        assert (paid["type"], paid["paid_on"], paid["return_reason"]) == ("cash.paid", today, None)
        assert paid["staff_id"]
        assert (returned["type"], returned["return_reason"], returned["paid_on"]) == (
            "cash.returned",
            "REFUSED",
            None,
        )
        item = (await sandbox.http.get("/vnpost/items/C1")).json()
        assert (item["status"], item["paid_on"]) == ("PAID", today)
        statement = (await sandbox.http.get(f"/vnpost/statements/{today}")).json()
        assert statement["total_paid"] == 1_500_000 and len(statement["entries"]) == 2
        assert (await sandbox.admin.ledger())["by_counterparty"]["VNPOST"]["returned"] == 1

    async def test_control_totals_and_commune_checked(self, sandbox) -> None:
        answer = await sandbox.http.post(
            "/vnpost/cash-lists", json=cash_list("L2", "08869", [("C1", 1)], control_sum=2)
        )
        assert (answer.status_code, answer.json()) == (422, {"code": "CONTROL_TOTALS_MISMATCH"})
        body = cash_list("L3", "08869", [("C3", 5)])
        body["items"][0]["commune_code"] = "08878"
        answer = await sandbox.http.post("/vnpost/cash-lists", json=body)
        assert answer.json()["rejected"] == [
            {"end_to_end_id": "C3", "reason_code": "COMMUNE_MISMATCH"}
        ]

    async def test_unknown_item_not_found(self, sandbox) -> None:
        answer = await sandbox.http.get("/vnpost/items/NOPE")
        assert (answer.status_code, answer.json()) == (404, {"code": "NOT_FOUND"})


class TestSettlementDelay:
    async def test_transfers_stay_pending_until_the_bank_settles(
        self, recorder, receiver_port
    ) -> None:
        import httpx

        from tests.support.sandbox import SandboxProcess

        recorder.clear()
        slow = SandboxProcess(
            callback_base=f"http://127.0.0.1:{receiver_port}",
            extra_args=["--settlement-delay-ms", "400", "--webhook-delay-ms", "10"],
        )
        with slow:
            async with httpx.AsyncClient(base_url=slow.url) as http:
                await http.post(
                    "/admin/accounts",
                    json=[{"bin": AGRIBANK, "account_number": "A1", "holder_name": "X"}],
                )
                await http.post(
                    f"/iso/{AGRIBANK}/files",
                    content=pain001("SLOW1", [("S1", "A1", "150000")]),
                    headers={"Content-Type": "application/xml"},
                )
                assert (await http.get(f"/iso/{AGRIBANK}/transfers/S1")).json()[
                    "status"
                ] == "PENDING"
                report = etree.fromstring(
                    (await http.get(f"/iso/{AGRIBANK}/files/SLOW1/status")).content
                )
                assert report.findtext(".//s:GrpSts", namespaces=PAIN002) == "PDNG"
                await recorder.wait_for(["S1"])
                assert (await http.get(f"/iso/{AGRIBANK}/transfers/S1")).json()[
                    "status"
                ] == "SETTLED"
