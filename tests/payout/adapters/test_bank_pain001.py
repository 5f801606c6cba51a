"""The pain.001.001.09 file we send to ISO 20022 banks validates against the official schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from services.payout.adapters.banks import Debtor, PaymentBatch, build_pain001
from tests.payout.adapters.adapter_helpers import AGRIBANK, instruction

XSD = Path(__file__).resolve().parents[3] / "services" / "sandbox" / "data" / "pain.001.001.09.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
DEBTOR = Debtor("Bảo hiểm xã hội tỉnh Vĩnh Phúc", "3600201001234", "BHXH26")
NAMES = ["Nguyễn Văn Ánh", "Trần Thị Đào", "Lê Hoàng Đức", "Phạm Thị Hương", "Đặng Quốc Việt"]


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def thousand_payments() -> PaymentBatch:
    items = [
        instruction(
            f"{4000000000 + n}",
            1_500_000 + 37 * n,
            bin_=AGRIBANK if n % 3 else "970436",
            name=NAMES[n % len(NAMES)],
            e2e=f"PAY2023050000{n:05d}",
        )
        for n in range(1000)
    ]
    return PaymentBatch.of("BHXH26-2023-05-AGR-001", AGRIBANK, items, date(2023, 5, 5))


class TestPain001:
    def test_thousand_transactions_validate_against_official_schema(self, schema) -> None:
        batch = thousand_payments()
        document = build_pain001(batch, DEBTOR, datetime(2023, 5, 4, 8, 30, tzinfo=UTC))
        schema.validate(document.decode())  # raises on any violation
        lxml_schema = etree.XMLSchema(etree.parse(str(XSD)))
        assert lxml_schema.validate(etree.fromstring(document)), lxml_schema.error_log

    def test_header_and_payment_info_carry_control_totals(self) -> None:
        batch = thousand_payments()
        root = etree.fromstring(build_pain001(batch, DEBTOR))
        assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "1000"
        assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == str(
            sum(item.amount for item in batch.items)
        )
        assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == batch.batch_id
        info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
        assert info.findtext("p:DbtrAcct/p:Id/p:Othr/p:Id", namespaces=NS) == "3600201001234"
        assert info.findtext("p:ReqdExctnDt/p:Dt", namespaces=NS) == "2023-05-05"
        assert len(info.findall("p:CdtTrfTxInf", NS)) == 1000

    def test_transaction_has_whole_vnd_amount_othr_account_and_vietnamese_name(self) -> None:
        root = etree.fromstring(build_pain001(thousand_payments(), DEBTOR))
        first = root.find("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS)
        amount = first.find("p:Amt/p:InstdAmt", NS)
        assert (amount.get("Ccy"), amount.text) == ("VND", "1500000")
        assert first.findtext("p:PmtId/p:EndToEndId", namespaces=NS) == "PAY202305000000000"
        assert first.findtext("p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=NS) == "4000000000"
        assert first.find("p:CdtrAcct/p:Id/p:IBAN", NS) is None
        assert first.findtext("p:Cdtr/p:Nm", namespaces=NS) == "Nguyễn Văn Ánh"
        assert first.findtext("p:RmtInf/p:Ustrd", namespaces=NS) == "Lương hưu tháng 05/2023"

    def test_creditor_agent_has_bic_and_bin_for_known_bank_and_bin_alone_otherwise(
        self, schema
    ) -> None:
        items = [
            instruction("111", 100_000, bin_="970436"),
            instruction("222", 200_000, bin_="970999"),
        ]
        document = build_pain001(PaymentBatch.of("B1", AGRIBANK, items, date(2023, 5, 5)), DEBTOR)
        schema.validate(document.decode())
        agents = etree.fromstring(document).findall(".//p:CdtTrfTxInf/p:CdtrAgt/p:FinInstnId", NS)
        assert agents[0].findtext("p:BICFI", namespaces=NS) == "BFTVVNVX"
        assert agents[0].findtext("p:ClrSysMmbId/p:MmbId", namespaces=NS) == "970436"
        assert agents[1].find("p:BICFI", NS) is None
        assert agents[1].findtext("p:ClrSysMmbId/p:MmbId", namespaces=NS) == "970999"

    def test_declared_totals_are_written_as_given_so_the_bank_can_check_them(self) -> None:
        batch = PaymentBatch(
            "B2", AGRIBANK, 5, 999, (instruction("1", 100, bin_=AGRIBANK),), date(2023, 5, 5)
        )
        header = etree.fromstring(build_pain001(batch, DEBTOR)).find(".//p:GrpHdr", NS)
        assert header.findtext("p:NbOfTxs", namespaces=NS) == "5"
        assert header.findtext("p:CtrlSum", namespaces=NS) == "999"

    @pytest.mark.parametrize("field", ["batch_id", "end_to_end_id"])
    def test_identifier_longer_than_35_characters_refused(self, field: str) -> None:
        long_id = "X" * 36
        item = instruction(
            "1", 100, bin_=AGRIBANK, e2e=long_id if field == "end_to_end_id" else None
        )
        batch_id = long_id if field == "batch_id" else "B3"
        with pytest.raises(ValueError):
            build_pain001(PaymentBatch.of(batch_id, AGRIBANK, [item], date(2023, 5, 5)), DEBTOR)
