"""The file bank writes ISO 20022 as banks write it: camt.054.001.08 notifications and
pain.002.001.10 status reports, read here with lxml and checked against the standard's rules
and against schemas cut from the standard (`schemas/`): no proprietary status codes; status in
Sts/Cd, direction in CdtDbtInd, the movement in BkTxCd/Domn; AcctSvcrRef on every entry and
NtryRef only on a share of them; batch bookings with NtryDtls/Btch; pending then booked;
reversals (RvslInd) and late returns (credits with RtrInf) that the ledger reflects; a file
refused as a whole by a group-level pain.002. Fault injection chooses each."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from services.sandbox.state import PERMANENT_BANK_FAILURES, Faults
from tests.sandbox.conftest import ISO_BODIES
from tests.sandbox.iso_reading import CAMT054, PAIN002, C, S
from tests.sandbox.test_sandbox_files_and_cash import AGRIBANK, pain001, post_file

SCHEMAS = Path(__file__).with_name("schemas")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
PROPRIETARY_STATUS = re.compile(rb">\s*(SETTLED|FAILED|RETURNED|REVERSED|PENDING)\s*<")


def schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


CAMT054_SCHEMA = schema("camt.054.001.08.subset.xsd")
PAIN002_SCHEMA = schema("pain.002.001.10.subset.xsd")


def conforming(body: bytes) -> etree._Element:
    """The document, after it passed its schema and the rules no schema says."""
    root = etree.fromstring(body)
    chosen = {f"{{{CAMT054}}}Document": CAMT054_SCHEMA, f"{{{PAIN002}}}Document": PAIN002_SCHEMA}[
        root.tag
    ]
    assert chosen.validate(root), chosen.error_log
    assert root.find(".//{*}Prtry") is None, "a proprietary code"
    assert not PROPRIETARY_STATUS.search(body), "a status word of our own"
    if root.tag == f"{{{CAMT054}}}Document":
        for entry in root.iterfind(".//c:Ntry", C):
            check_entry(entry)
    return root


def check_entry(entry: etree._Element) -> None:
    """The standard's rules for one Ntry, as the sandbox uses them."""
    status = entry.findtext("c:Sts/c:Cd", namespaces=C)
    assert status in ("BOOK", "PDNG", "INFO")
    assert entry.findtext("c:AcctSvcrRef", namespaces=C)
    assert (entry.find("c:BookgDt", C) is not None) == (
        status == "BOOK"
    )  # a pending entry is not booked
    amount = Decimal(entry.findtext("c:Amt", namespaces=C))
    assert (
        entry.find("c:Amt", C).get("Ccy") == "VND"
        and amount == amount.to_integral_value()
        and amount > 0
    )
    direction = entry.findtext("c:CdtDbtInd", namespaces=C)
    reversal = entry.findtext("c:RvslInd", namespaces=C) == "true"
    domain = (
        entry.findtext("c:BkTxCd/c:Domn/c:Cd", namespaces=C),
        entry.findtext("c:BkTxCd/c:Domn/c:Fmly/c:Cd", namespaces=C),
        entry.findtext("c:BkTxCd/c:Domn/c:Fmly/c:SubFmlyCd", namespaces=C),
    )
    transactions = entry.findall("c:NtryDtls/c:TxDtls", C)
    assert transactions
    if direction == "DBIT":
        assert not reversal and domain == ("PMNT", "ICDT", "ESCT")
    elif reversal:  # a reversed debit is a credit with the debit's code
        assert domain == ("PMNT", "ICDT", "ESCT")
    else:
        assert domain == ("PMNT", "ICDT", "RRTN")
        assert all(tx.findtext("c:RtrInf/c:Rsn/c:Cd", namespaces=C) for tx in transactions)
    batch = entry.find("c:NtryDtls/c:Btch", C)
    if batch is not None:
        assert int(batch.findtext("c:NbOfTxs", namespaces=C)) == len(transactions)
        assert Decimal(batch.findtext("c:TtlAmt", namespaces=C)) == amount
        assert batch.findtext("c:CdtDbtInd", namespaces=C) == direction
    assert sum(Decimal(tx.findtext("c:Amt", namespaces=C)) for tx in transactions) == amount
    for tx in transactions:
        assert tx.findtext("c:Refs/c:EndToEndId", namespaces=C) and tx.findtext(
            "c:Refs/c:AcctSvcrRef", namespaces=C
        )
        assert tx.findtext("c:CdtDbtInd", namespaces=C) == direction


def entries() -> list[etree._Element]:
    found = []
    for body in ISO_BODIES:
        root = conforming(body)
        found += root.findall("c:BkToCstmrDbtCdtNtfctn/c:Ntfctn/c:Ntry", C)
    return found


def reports() -> list[etree._Element]:
    return [root for root in map(conforming, ISO_BODIES) if root.tag == f"{{{PAIN002}}}Document"]


async def seed(sandbox, count: int, prefix: str = "A") -> list[str]:
    accounts = [f"{prefix}{n:05d}" for n in range(count)]
    await sandbox.admin.seed_accounts(
        [{"bin": AGRIBANK, "account_number": a, "holder_name": "Nguyễn Thị Lan"} for a in accounts]
    )
    return accounts


def rows(accounts: list[str], tag: str, base: int = 1_500_000) -> list[tuple[str, str, str]]:
    return [(f"{tag}-{n}", account, str(base + n)) for n, account in enumerate(accounts)]


async def send(sandbox, message_id: str, file_rows: list[tuple[str, str, str]]) -> None:
    answer = await post_file(sandbox, pain001(message_id, file_rows))
    assert answer.status_code == 202, answer.text


async def settle_all(sandbox, e2e_ids: list[str], timeout: float = 20.0) -> dict:
    outcomes = await sandbox.callbacks.wait_for(e2e_ids, timeout=timeout)
    await sandbox.admin.wait_callbacks_idle(timeout=timeout)
    assert sandbox.callbacks.rejections == []
    return outcomes


async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


class TestBatchBooking:
    async def test_a_file_of_2000_is_one_debit_entry_and_every_transfer_settles_once(
        self, sandbox
    ) -> None:
        accounts = await seed(sandbox, 2_000)
        file_rows = rows(accounts, "B")
        await send(sandbox, "BATCH2000", file_rows)

        outcomes = await settle_all(sandbox, [e2e for e2e, _, _ in file_rows])

        [entry] = entries()
        assert entry.findtext("c:CdtDbtInd", namespaces=C) == "DBIT"
        assert entry.findtext("c:Sts/c:Cd", namespaces=C) == "BOOK"
        batch = entry.find("c:NtryDtls/c:Btch", C)
        assert batch.findtext("c:NbOfTxs", namespaces=C) == "2000"
        assert batch.findtext("c:MsgId", namespaces=C) == "BATCH2000"
        total = sum(int(amount) for _, _, amount in file_rows)
        assert (
            int(batch.findtext("c:TtlAmt", namespaces=C))
            == total
            == int(entry.findtext("c:Amt", namespaces=C))
        )
        assert all(len(found) == 1 and found[0]["type"] == "SETTLED" for found in outcomes.values())
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"], ledger["net_credited"]) == (
            2_000,
            total,
            total,
        )

    async def test_batch_booking_off_books_one_entry_per_transfer(self, sandbox) -> None:
        await sandbox.admin.set_faults(batch_booking=False)
        accounts = await seed(sandbox, 5)
        file_rows = rows(accounts, "S")
        await send(sandbox, "SINGLE5", file_rows)

        await settle_all(sandbox, [e2e for e2e, _, _ in file_rows])

        found = entries()
        assert len(found) == 5
        assert all(
            e.find("c:NtryDtls/c:Btch", C) is None and len(e.findall(".//c:TxDtls", C)) == 1
            for e in found
        )

    async def test_a_batch_larger_than_the_bank_books_at_once_is_cut_into_whole_entries(
        self, sandbox
    ) -> None:
        await sandbox.admin.set_faults(batch_booking_max=40)
        accounts = await seed(sandbox, 100)
        file_rows = rows(accounts, "P")
        await send(sandbox, "PARTS100", file_rows)

        await settle_all(sandbox, [e2e for e2e, _, _ in file_rows])

        sizes = sorted(
            int(e.findtext("c:NtryDtls/c:Btch/c:NbOfTxs", namespaces=C)) for e in entries()
        )
        assert sizes == [20, 40, 40]
        references = [e.findtext("c:AcctSvcrRef", namespaces=C) for e in entries()]
        assert len(set(references)) == 3


class TestEntryReferences:
    @pytest.mark.parametrize(
        ("share", "low", "high"), [(0.0, 0, 0), (1.0, 200, 200), (0.5, 60, 140)]
    )
    async def test_ntry_ref_is_written_on_the_chosen_share_and_acctsvcrref_always(
        self, sandbox, share, low, high
    ) -> None:
        await sandbox.admin.set_faults(batch_booking=False, ntry_ref_share=share, seed=11)
        accounts = await seed(sandbox, 200)
        file_rows = rows(accounts, "R")
        await send(sandbox, "REFS200", file_rows)

        await settle_all(sandbox, [e2e for e2e, _, _ in file_rows])

        found = entries()
        assert len(found) == 200
        with_ref = sum(1 for e in found if e.find("c:NtryRef", C) is not None)
        assert low <= with_ref <= high
        assert len({e.findtext("c:AcctSvcrRef", namespaces=C) for e in found}) == 200

    async def test_the_default_writes_ntry_ref_on_about_half(self) -> None:
        assert Faults().ntry_ref_share == 0.5 and Faults().batch_booking is True


class TestPendingThenBooked:
    async def test_an_entry_first_sent_pending_is_booked_later_in_a_new_notification(
        self, sandbox, http
    ) -> None:
        await sandbox.admin.set_faults(pending_first_rate=1.0, pending_seconds=1.0)
        accounts = await seed(sandbox, 3)
        file_rows = rows(accounts, "PD")
        await send(sandbox, "PENDING3", file_rows)

        outcomes = await sandbox.callbacks.wait_for([e2e for e2e, _, _ in file_rows])
        assert {o[0]["type"] for o in outcomes.values()} == {"PENDING"}
        status = (await http.get(f"/iso/{AGRIBANK}/transfers/PD-0")).json()
        assert status["status"] == "PENDING"
        assert (await sandbox.admin.ledger())["credits"] == 0

        async def booked() -> bool:
            return all(len(sandbox.callbacks.by_end_to_end_id[e2e]) == 2 for e2e, _, _ in file_rows)

        await wait_until(booked)
        await sandbox.admin.wait_callbacks_idle()
        pending, booked_entry = entries()
        assert [
            pending.findtext("c:Sts/c:Cd", namespaces=C),
            booked_entry.findtext("c:Sts/c:Cd", namespaces=C),
        ] == ["PDNG", "BOOK"]
        assert pending.findtext("c:AcctSvcrRef", namespaces=C) != booked_entry.findtext(
            "c:AcctSvcrRef", namespaces=C
        )
        same = [
            [
                tx.findtext("c:Refs/c:EndToEndId", namespaces=C)
                for tx in e.iterfind(".//c:TxDtls", C)
            ]
            for e in (pending, booked_entry)
        ]
        assert same[0] == same[1] == [e2e for e2e, _, _ in file_rows]
        assert len({d[2] for d in sandbox.callbacks.deliveries}) == 2  # two notifications
        ledger = await sandbox.admin.ledger()
        assert (
            ledger["credits"] == 3
            and (await http.get(f"/iso/{AGRIBANK}/transfers/PD-0")).json()["status"] == "SETTLED"
        )


class TestReversals:
    async def test_a_booked_debit_reversed_later_gives_the_money_back(self, sandbox, http) -> None:
        await sandbox.admin.set_faults(reversal_rate=1.0, reversal_delay_seconds=0.2)
        accounts = await seed(sandbox, 2)
        file_rows = rows(accounts, "RV")
        await send(sandbox, "REVERSE2", file_rows)

        async def reversed_() -> bool:
            return all(
                len(sandbox.callbacks.by_end_to_end_id.get(e2e, [])) == 2 for e2e, _, _ in file_rows
            )

        await wait_until(reversed_)
        await sandbox.admin.wait_callbacks_idle()
        booking, *reversals = entries()
        assert len(reversals) == 2
        for reversal in reversals:
            assert reversal.findtext("c:RvslInd", namespaces=C) == "true"
            assert reversal.findtext("c:CdtDbtInd", namespaces=C) == "CRDT"
            assert booking.findtext("c:AcctSvcrRef", namespaces=C) in reversal.findtext(
                "c:AddtlNtryInf", namespaces=C
            )
        original = {
            tx.findtext("c:Refs/c:EndToEndId", namespaces=C): tx.findtext(
                "c:Refs/c:AcctSvcrRef", namespaces=C
            )
            for tx in booking.iterfind(".//c:TxDtls", C)
        }
        undone = {
            tx.findtext("c:Refs/c:EndToEndId", namespaces=C): tx.findtext(
                "c:Refs/c:AcctSvcrRef", namespaces=C
            )
            for r in reversals
            for tx in r.iterfind(".//c:TxDtls", C)
        }
        assert undone == original
        total = sum(int(a) for _, _, a in file_rows)
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"]) == (2, total)
        assert (ledger["reversed"], ledger["total_reversed"], ledger["net_credited"]) == (
            2,
            total,
            0,
        )
        listed = (await sandbox.admin.ledger_entries())["entries"]
        assert {e["status"] for e in listed} == {"REVERSED"}
        day = datetime.now(VN).date().isoformat()
        statement = (await http.get(f"/iso/{AGRIBANK}/statements/{day}")).json()
        assert statement["total_credited"] == 0 and {e["status"] for e in statement["entries"]} == {
            "REVERSED"
        }


class TestLateReturns:
    async def test_a_return_arrives_later_as_a_credit_booked_days_after_the_debit(
        self, sandbox
    ) -> None:
        await sandbox.admin.set_faults(
            late_return_rate=1.0, late_return_delay_seconds=0.3, late_return_days=3
        )
        accounts = await seed(sandbox, 2)
        file_rows = rows(accounts, "LR")
        await send(sandbox, "RETURN2", file_rows)

        async def returned() -> bool:
            return all(
                len(sandbox.callbacks.by_end_to_end_id.get(e2e, [])) == 2 for e2e, _, _ in file_rows
            )

        await wait_until(returned)
        await sandbox.admin.wait_callbacks_idle()
        booking, *returns = entries()
        booked_at = datetime.fromisoformat(booking.findtext("c:BookgDt/c:DtTm", namespaces=C))
        assert len(returns) == 2
        for entry in returns:
            assert (
                entry.findtext("c:CdtDbtInd", namespaces=C) == "CRDT"
                and entry.find("c:RvslInd", C) is None
            )
            assert (
                entry.findtext(".//c:TxDtls/c:RtrInf/c:Rsn/c:Cd", namespaces=C)
                in PERMANENT_BANK_FAILURES
            )
            returned_at = datetime.fromisoformat(entry.findtext("c:BookgDt/c:DtTm", namespaces=C))
            assert returned_at - booked_at == timedelta(days=3)
        total = sum(int(a) for _, _, a in file_rows)
        ledger = await sandbox.admin.ledger()
        assert (ledger["returned"], ledger["total_returned"], ledger["net_credited"]) == (
            2,
            total,
            0,
        )
        assert {e["status"] for e in (await sandbox.admin.ledger_entries())["entries"]} == {
            "RETURNED"
        }

    async def test_a_return_asked_for_by_admin_is_a_credit_with_return_information(
        self, sandbox
    ) -> None:
        accounts = await seed(sandbox, 1)
        await send(sandbox, "ADMINRET", rows(accounts, "AR"))
        await settle_all(sandbox, ["AR-0"])

        await sandbox.admin.return_transfer("AR-0", "MD07")

        async def returned() -> bool:
            return len(sandbox.callbacks.by_end_to_end_id["AR-0"]) == 2

        await wait_until(returned)
        assert sandbox.callbacks.by_end_to_end_id["AR-0"][1]["type"] == "RETURNED"
        assert sandbox.callbacks.by_end_to_end_id["AR-0"][1]["reason_code"] == "MD07"
        assert len(entries()) == 2


class TestStatusReports:
    async def test_a_file_refused_as_a_whole_gets_a_group_rjct_and_moves_nothing(
        self, sandbox, http
    ) -> None:
        await sandbox.admin.set_faults(group_rejection_rate=1.0)
        accounts = await seed(sandbox, 3)
        await send(sandbox, "REFUSED3", rows(accounts, "G"))

        async def reported() -> bool:
            return bool(sandbox.callbacks.deliveries)

        await wait_until(reported)
        await sandbox.admin.wait_callbacks_idle()
        [report] = reports()
        assert entries() == []
        group = report.find("s:CstmrPmtStsRpt/s:OrgnlGrpInfAndSts", S)
        assert group.findtext("s:GrpSts", namespaces=S) == "RJCT"
        assert group.findtext("s:StsRsnInf/s:Rsn/s:Cd", namespaces=S) == "FF01"
        assert report.find(".//s:TxInfAndSts", S) is None
        polled = conforming((await http.get(f"/iso/{AGRIBANK}/files/REFUSED3/status")).content)
        assert (
            polled.findtext(".//s:GrpSts", namespaces=S) == "RJCT"
            and polled.find(".//s:TxInfAndSts", S) is None
        )
        ledger = await sandbox.admin.ledger()
        assert ledger["credits"] == 0
        assert {
            (e["status"], e["reason_code"])
            for e in (await sandbox.admin.ledger_entries())["entries"]
        } == {("FAILED", "FF01")}

    async def test_a_file_that_fails_validation_gets_a_group_rjct_ff01(self, sandbox, http) -> None:
        broken = pain001("BROKEN1", [("X1", "A1", "150000")]).replace(
            b"<PmtMtd>TRF", b"<PmtMtd>XXX"
        )
        answer = await post_file(sandbox, broken)
        assert answer.status_code == 400

        async def reported() -> bool:
            return bool(sandbox.callbacks.deliveries)

        await wait_until(reported)
        [report] = reports()
        assert report.findtext(".//s:OrgnlMsgId", namespaces=S) == "BROKEN1"
        assert report.findtext(".//s:GrpSts", namespaces=S) == "RJCT"
        assert (
            report.findtext(".//s:OrgnlGrpInfAndSts/s:StsRsnInf/s:Rsn/s:Cd", namespaces=S) == "FF01"
        )
        assert report.find(".//s:TxInfAndSts", S) is None
        polled = conforming((await http.get(f"/iso/{AGRIBANK}/files/BROKEN1/status")).content)
        assert polled.findtext(".//s:GrpSts", namespaces=S) == "RJCT"

        accounts = await seed(sandbox, 1)  # the same id, now valid, is taken
        await send(sandbox, "BROKEN1", [("X1", accounts[0], "150000")])
        await settle_all(sandbox, ["X1"])
        assert sandbox.callbacks.by_end_to_end_id["X1"][0]["type"] == "SETTLED"

    async def test_some_transactions_rejected_gives_part_with_only_those_listed(
        self, sandbox
    ) -> None:
        accounts = await seed(sandbox, 3)
        file_rows = [*rows(accounts, "PT"), ("PT-X", "UNKNOWN", "990000")]
        await send(sandbox, "PARTIAL4", file_rows)

        outcomes = await settle_all(sandbox, [e2e for e2e, _, _ in file_rows])

        assert (outcomes["PT-X"][0]["type"], outcomes["PT-X"][0]["reason_code"]) == (
            "FAILED",
            "AC01",
        )
        [report] = reports()
        assert report.findtext(".//s:GrpSts", namespaces=S) == "PART"
        listed = [
            tx.findtext("s:OrgnlEndToEndId", namespaces=S)
            for tx in report.iterfind(".//s:TxInfAndSts", S)
        ]
        assert listed == ["PT-X"]
        [entry] = entries()
        assert entry.findtext("c:NtryDtls/c:Btch/c:NbOfTxs", namespaces=C) == "3"


class TestEverythingTheBankWrites:
    async def test_no_proprietary_status_in_any_document_and_each_passes_its_schema(
        self, sandbox, http
    ) -> None:
        """Every kind of document at once: batch and single entries, pending, booked, reversed,
        returned, rejected transactions, a refused file; each conforms, none says SETTLED,
        FAILED or RETURNED in a code of its own."""
        await sandbox.admin.set_faults(
            pending_first_rate=0.5,
            pending_seconds=0.2,
            reversal_rate=0.2,
            reversal_delay_seconds=0.2,
            late_return_rate=0.3,
            late_return_delay_seconds=0.2,
            permanent_failure_rate=0.1,
            seed=5,
        )
        accounts = await seed(sandbox, 60)
        await send(sandbox, "MIXED1", rows(accounts[:30], "M1"))
        await sandbox.admin.set_faults(
            batch_booking=False,
            pending_first_rate=0.5,
            pending_seconds=0.2,
            reversal_rate=0.2,
            reversal_delay_seconds=0.2,
            late_return_rate=0.3,
            late_return_delay_seconds=0.2,
            seed=6,
        )
        await send(sandbox, "MIXED2", rows(accounts[30:], "M2"))
        await post_file(
            sandbox, pain001("MIXED3", [("M3", "A1", "1")]).replace(b"<PmtMtd>TRF", b"<PmtMtd>X")
        )
        await asyncio.sleep(1.0)
        await sandbox.admin.wait_callbacks_idle()
        polled = [
            (await http.get(f"/iso/{AGRIBANK}/files/{m}/status")).content
            for m in ("MIXED1", "MIXED2", "MIXED3")
        ]

        kinds = {o["type"] for d in sandbox.callbacks.deliveries for o in d[3]}
        assert {"SETTLED", "PENDING", "REVERSED", "RETURNED", "FAILED", "FILE_REJECTED"} <= kinds
        for body in [*ISO_BODIES, *polled]:
            conforming(body)
        assert len(ISO_BODIES) >= 3


class TestDeterminism:
    async def test_the_same_seed_writes_the_same_entries(self, sandbox) -> None:
        accounts = await seed(sandbox, 40)

        async def run(tag: str) -> list[tuple[str, bool, int]]:
            await sandbox.admin.set_faults(
                batch_booking=False,
                pending_first_rate=0.3,
                pending_seconds=0.1,
                ntry_ref_share=0.5,
                permanent_failure_rate=0.2,
                seed=42,
            )
            ISO_BODIES.clear()
            file_rows = [(f"{tag}-{n}", a, str(1_000_000 + n)) for n, a in enumerate(accounts)]
            await send(sandbox, f"DET{tag}", file_rows)
            await asyncio.sleep(0.5)
            await sandbox.admin.wait_callbacks_idle()
            seen = sorted(
                (
                    e.findtext(".//c:TxDtls/c:Refs/c:EndToEndId", namespaces=C).split("-")[1]
                    + e.findtext("c:Sts/c:Cd", namespaces=C),
                    e.find("c:NtryRef", C) is not None,
                    int(e.findtext("c:Amt", namespaces=C)),
                )
                for e in entries()
            )
            return seen

        first = await run("a")
        second = await run("b")
        assert first == second and len(first) > 20


class TestFaultSettings:
    async def test_the_new_faults_are_set_and_read_back_and_bad_values_refused(
        self, sandbox, http
    ) -> None:
        chosen = {
            "ntry_ref_share": 0.25,
            "batch_booking": False,
            "batch_booking_max": 100,
            "pending_first_rate": 0.1,
            "pending_seconds": 2.0,
            "reversal_rate": 0.01,
            "reversal_delay_seconds": 3.0,
            "late_return_rate": 0.02,
            "late_return_delay_seconds": 4.0,
            "late_return_days": 2,
            "group_rejection_rate": 0.05,
        }
        answer = await sandbox.admin.set_faults(**chosen)
        assert {k: answer[k] for k in chosen} == chosen
        refused = await http.put("/admin/faults", json={"reversal_rate": 1.5})
        assert refused.status_code == 422
        assert (await sandbox.admin.set_faults())["reversal_rate"] == 0.0
