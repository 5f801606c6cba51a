"""Banks that take ISO 20022 files: pain.001.001.09 credit-transfer initiations out, pain.002
status reports and camt.054 debit/credit notifications (signed callbacks) back.

Vietnamese accounts have no IBAN: the creditor account is `CdtrAcct/Id/Othr/Id`. VND has no
minor unit, so amounts are written as whole numbers (`<InstdAmt Ccy="VND">150000</InstdAmt>`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from ._callbacks import authenticate_callback
from ._http import CounterpartyHttp, parse_datetime
from .base import (
    CallbackRejected,
    NameInquiryResult,
    PaymentBatch,
    PaymentOutcome,
    PaymentStatus,
    StatementEntry,
    SubmitResult,
)
from .directory import BankInfo, load_banks
from .napas import (
    MAX_VND,
    bank_name_inquiry,
    check_batch_for,
    json_payment_status,
    json_statement,
    submit_answer,
)

PAIN001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002_NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
CAMT054_NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
MAX35 = 35
MAX140 = 140
CLEARING_SYSTEM = "NAPAS"
CATEGORY_PURPOSE = "SSBE"  # social security benefit

_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass(frozen=True, slots=True)
class Debtor:
    """The paying agency and the account the money leaves from."""

    name: str
    account_number: str
    initiating_party_id: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    end_to_end_id: str
    status: str  # ACSC, RJCT, PDNG (ISO transaction status codes)
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class PaymentStatusReport:
    """A parsed pain.002: the group status of one file and the status of each transaction."""

    message_id: str
    original_message_id: str
    group_status: str | None
    transactions: tuple[TransactionStatus, ...]


def _text(value: str, limit: int) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value).strip()
    return cleaned[:limit]


_PAIN001_TAGS: dict[str, str] = {}
_SubElement = etree.SubElement


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    qualified = _PAIN001_TAGS.get(tag)
    if qualified is None:
        qualified = _PAIN001_TAGS[tag] = f"{{{PAIN001_NS}}}{tag}"
    element = _SubElement(parent, qualified, attrs) if attrs else _SubElement(parent, qualified)
    if text is not None:
        element.text = text
    return element


def _agent(parent: etree._Element, tag: str, bin_: str, banks: Mapping[str, BankInfo]) -> None:
    fin = _sub(_sub(parent, tag), "FinInstnId")
    info = banks.get(bin_)
    if info is not None and info.swift:
        _sub(fin, "BICFI", info.swift)
    member = _sub(fin, "ClrSysMmbId")
    _sub(_sub(member, "ClrSysId"), "Prtry", CLEARING_SYSTEM)
    _sub(member, "MmbId", bin_)


def _check_iso_ids(batch: PaymentBatch) -> None:
    if not 0 < len(batch.batch_id) <= MAX35:
        raise ValueError("ISO 20022 message ids are 1 to 35 characters")
    for item in batch.items:
        if not 0 < len(item.end_to_end_id) <= MAX35:
            raise ValueError("ISO 20022 end-to-end ids are 1 to 35 characters")
        if item.amount <= 0:
            raise ValueError("amounts are positive whole VND")


def build_pain001(
    batch: PaymentBatch,
    debtor: Debtor,
    created_at: datetime | None = None,
    banks: Mapping[str, BankInfo] | None = None,
) -> bytes:
    """The pain.001.001.09 document for `batch`: one payment information block paid from the
    debtor's account at the bank receiving the file. The declared control totals are written
    as given, so the bank checks them."""
    _check_iso_ids(batch)
    banks = load_banks() if banks is None else banks
    created = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    root = etree.Element(f"{{{PAIN001_NS}}}Document", nsmap={None: PAIN001_NS})
    initiation = _sub(root, "CstmrCdtTrfInitn")

    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", batch.batch_id)
    _sub(header, "CreDtTm", created.isoformat().replace("+00:00", "Z"))
    _sub(header, "NbOfTxs", str(batch.control_count))
    _sub(header, "CtrlSum", str(batch.control_sum))
    party = _sub(header, "InitgPty")
    _sub(party, "Nm", _text(debtor.name, MAX140))
    if debtor.initiating_party_id:
        organisation = _sub(_sub(party, "Id"), "OrgId")
        _sub(_sub(organisation, "Othr"), "Id", _text(debtor.initiating_party_id, MAX35))

    info = _sub(initiation, "PmtInf")
    _sub(info, "PmtInfId", batch.batch_id)
    _sub(info, "PmtMtd", "TRF")
    _sub(info, "NbOfTxs", str(batch.control_count))
    _sub(info, "CtrlSum", str(batch.control_sum))
    _sub(_sub(_sub(info, "PmtTpInf"), "CtgyPurp"), "Cd", CATEGORY_PURPOSE)
    _sub(_sub(info, "ReqdExctnDt"), "Dt", batch.execution_date.isoformat())
    _sub(_sub(info, "Dbtr"), "Nm", _text(debtor.name, MAX140))
    debtor_account = _sub(info, "DbtrAcct")
    _sub(_sub(_sub(debtor_account, "Id"), "Othr"), "Id", debtor.account_number)
    _sub(debtor_account, "Ccy", "VND")
    _agent(info, "DbtrAgt", batch.counterparty, banks)
    _sub(info, "ChrgBr", "DEBT")

    for item in batch.items:
        transaction = _sub(info, "CdtTrfTxInf")
        _sub(_sub(transaction, "PmtId"), "EndToEndId", item.end_to_end_id)
        _sub(_sub(transaction, "Amt"), "InstdAmt", str(item.amount), Ccy="VND")
        _agent(transaction, "CdtrAgt", item.bank_bin or batch.counterparty, banks)
        name = _text(item.account_name, MAX140)
        creditor = _sub(transaction, "Cdtr")
        if name:
            _sub(creditor, "Nm", name)
        account = _sub(transaction, "CdtrAcct")
        _sub(_sub(_sub(account, "Id"), "Othr"), "Id", item.account_number or "")
        remittance = _text(item.remittance_info, MAX140)
        if remittance:
            _sub(_sub(transaction, "RmtInf"), "Ustrd", remittance)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _parse(raw: bytes) -> etree._Element:
    return etree.fromstring(raw, parser=_SAFE_PARSER)


def _find_text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def parse_pain002(raw: bytes) -> PaymentStatusReport:
    root = _parse(raw)
    report = root.find("{*}CstmrPmtStsRpt")
    if report is None:
        raise ValueError("not a pain.002 customer payment status report")
    transactions = tuple(
        TransactionStatus(
            end_to_end_id=_find_text(tx, "{*}OrgnlEndToEndId") or "",
            status=_find_text(tx, "{*}TxSts") or "",
            reason_code=_find_text(tx, "{*}StsRsnInf/{*}Rsn/{*}Cd"),
        )
        for tx in report.iterfind("{*}OrgnlPmtInfAndSts/{*}TxInfAndSts")
    )
    return PaymentStatusReport(
        message_id=_find_text(report, "{*}GrpHdr/{*}MsgId") or "",
        original_message_id=_find_text(report, "{*}OrgnlGrpInfAndSts/{*}OrgnlMsgId") or "",
        group_status=_find_text(report, "{*}OrgnlGrpInfAndSts/{*}GrpSts"),
        transactions=transactions,
    )


def _whole_vnd(text: str | None) -> int:
    """A finite whole amount within a money column; infinities, NaNs and huge exponents are
    refused before any conversion (int() of 1E+999999999 would build a billion-digit number)."""
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        raise CallbackRejected("malformed_body", "amount is not a number") from None
    if not value.is_finite() or value.adjusted() > 18:
        raise CallbackRejected("malformed_body", "amount is not a finite amount of VND")
    if value != value.to_integral_value():
        raise CallbackRejected("malformed_body", "VND amounts are whole numbers")
    amount = int(value)
    if not -MAX_VND <= amount <= MAX_VND:
        raise CallbackRejected("malformed_body", "amount is out of range")
    return amount


def _entry_outcome(entry: etree._Element, q: Callable[[str], str]) -> PaymentOutcome:
    """One Ntry, reading its direct children (notifications hold hundreds of entries)."""
    event_id = amount_text = bank_reference = booked = booked_day = None
    proprietary = sub_family = None
    details = None
    for child in entry:
        tag = child.tag
        if tag == q("NtryRef"):
            event_id = (child.text or "").strip()
        elif tag == q("Amt"):
            amount_text = child.text
        elif tag == q("AcctSvcrRef"):
            bank_reference = (child.text or "").strip()
        elif tag == q("BookgDt"):
            booked = child.findtext(q("DtTm"))
            booked_day = child.findtext(q("Dt"))
        elif tag == q("BkTxCd"):
            proprietary = child.findtext(f"{q('Prtry')}/{q('Cd')}")
            sub_family = child.findtext(f"{q('Domn')}/{q('Fmly')}/{q('SubFmlyCd')}")
        elif tag == q("NtryDtls"):
            details = child.find(q("TxDtls"))
    end_to_end_id = reason = None
    if details is not None:
        end_to_end_id = details.findtext(f"{q('Refs')}/{q('EndToEndId')}")
        bank_reference = bank_reference or details.findtext(f"{q('Refs')}/{q('AcctSvcrRef')}")
        return_info = details.find(q("RtrInf"))
        if return_info is not None:
            reason = return_info.findtext(f"{q('Rsn')}/{q('Cd')}")
    if not end_to_end_id or not event_id:
        raise CallbackRejected("malformed_body", "entry without references")
    if proprietary in ("SETTLED", "FAILED", "RETURNED"):
        status = proprietary
    elif details is None or details.find(q("RtrInf")) is None:
        status = "SETTLED"
    else:
        status = "RETURNED" if sub_family == "RRTN" else "FAILED"
    if booked:
        occurred_at = parse_datetime(booked.strip())
    elif booked_day:
        occurred_at = datetime.combine(date.fromisoformat(booked_day.strip()), datetime.min.time(), UTC)
    else:
        raise CallbackRejected("malformed_body", "entry without booking date")
    return PaymentOutcome(
        event_id=event_id,
        end_to_end_id=end_to_end_id.strip(),
        status=status,  # type: ignore[arg-type]
        amount=_whole_vnd(amount_text),
        reason_code=reason.strip() if reason else None,
        bank_reference=bank_reference or None,
        occurred_at=occurred_at,  # type: ignore[arg-type]
    )


def parse_camt054(raw: bytes) -> tuple[str, list[PaymentOutcome]]:
    """The message id (our delivery id) and one outcome per entry of a camt.054 (any version
    of its namespace)."""
    try:
        root = _parse(raw)
    except etree.XMLSyntaxError:
        raise CallbackRejected("malformed_body", "callback body is not XML") from None
    namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    names: dict[str, str] = {}

    def q(local: str) -> str:
        name = names.get(local)
        if name is None:
            name = names[local] = namespace + local
        return name

    notification = root.find(q("BkToCstmrDbtCdtNtfctn"))
    if notification is None:
        raise CallbackRejected("malformed_body", "not a camt.054 notification")
    message_id = notification.findtext(f"{q('GrpHdr')}/{q('MsgId')}")
    if not message_id or not message_id.strip():
        raise CallbackRejected("malformed_body", "notification without message id")
    try:
        outcomes = [
            _entry_outcome(entry, q)
            for block in notification.iterfind(q("Ntfctn"))
            for entry in block.iterfind(q("Ntry"))
        ]
    except ValueError:
        raise CallbackRejected("malformed_body", "unreadable entry") from None
    return message_id.strip(), outcomes


class Iso20022Channel:
    """A bank that takes pain.001 files; status by pain.002 or the JSON status inquiry, outcomes
    by signed camt.054 callbacks."""

    style = "iso20022"

    def __init__(
        self,
        bin_: str,
        http: CounterpartyHttp,
        secret: str,
        debtor: Debtor,
        tolerance_seconds: int = 300,
        banks: Mapping[str, BankInfo] | None = None,
    ) -> None:
        self.counterparty = bin_
        self._http = http
        self._secret = secret
        self._debtor = debtor
        self._tolerance = tolerance_seconds
        self._banks = banks

    def build_file(self, batch: PaymentBatch, created_at: datetime | None = None) -> bytes:
        return build_pain001(batch, self._debtor, created_at, self._banks)

    async def name_inquiry(self, account_number: str) -> NameInquiryResult:
        return await bank_name_inquiry(self._http, self.counterparty, account_number)

    async def submit_batch(self, batch: PaymentBatch) -> SubmitResult:
        check_batch_for(self.counterparty, batch)
        document = self.build_file(batch)
        response = await self._http.send(
            "POST",
            f"/iso/{self.counterparty}/files",
            content=document,
            headers={"Content-Type": "application/xml", "Idempotency-Key": batch.batch_id},
            moves_money=True,
        )
        _, refusals = submit_answer(self._http, response)
        rejected = tuple(refusals)
        refused = {end_to_end_id for end_to_end_id, _ in rejected}
        accepted = tuple(
            item.end_to_end_id for item in batch.items if item.end_to_end_id not in refused
        )
        return SubmitResult(accepted=accepted, rejected=rejected)

    async def status_report(self, message_id: str) -> PaymentStatusReport | None:
        """The bank's pain.002 for a file we sent (message id = batch id); None if the bank never
        received that file."""
        response = await self._http.send("GET", f"/iso/{self.counterparty}/files/{message_id}/status")
        if response.status_code == 404 and self._http.error_code(response) == "NOT_FOUND":
            return None
        if response.status_code != 200:
            raise self._http.refuse(response)
        return parse_pain002(response.content)

    async def payment_status(self, end_to_end_id: str) -> PaymentStatus:
        return await json_payment_status(
            self._http, f"/iso/{self.counterparty}/transfers/{end_to_end_id}", end_to_end_id
        )

    def parse_callback(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> tuple[str, list[PaymentOutcome]]:
        authenticate_callback(
            self.counterparty, self._secret, headers, raw_body, now, self._tolerance
        )
        return parse_camt054(raw_body)

    async def statement(self, day: date) -> list[StatementEntry]:
        return await json_statement(
            self._http, f"/iso/{self.counterparty}/statements/{day.isoformat()}"
        )
