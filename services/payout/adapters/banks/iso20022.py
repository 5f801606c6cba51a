"""Banks that take ISO 20022 files: pain.001.001.09 credit-transfer initiations out, pain.002
status reports and camt.054 debit/credit notifications (signed callbacks) back, read as the
standard writes them, whichever version (pain.002 .001.03 to .001.10, camt.052/053/054 .001.04
to .001.10): only the elements the standard defines are relied on, never a bank's proprietary
codes.

Vietnamese accounts have no IBAN: the creditor account is `CdtrAcct/Id/Othr/Id`. VND has no
minor unit, so amounts are written as whole numbers (`<InstdAmt Ccy="VND">150000</InstdAmt>`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from lxml import etree

from services.payout.domain.money import FractionOfDong, InvalidAmount, whole_vnd_text
from shared.banks import Bank
from shared.banks import banks as known_banks

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
from .napas import (
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


def _agent(parent: etree._Element, tag: str, bin_: str, banks: Mapping[str, Bank]) -> None:
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
    banks: Mapping[str, Bank] | None = None,
) -> bytes:
    """The pain.001.001.09 document for `batch`: one payment information block paid from the
    debtor's account at the bank receiving the file. The declared control totals are written
    as given, so the bank checks them."""
    _check_iso_ids(batch)
    banks = known_banks() if banks is None else banks
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


# pain.002 status codes (ExternalPaymentGroupStatus1Code / ExternalPaymentTransactionStatus1Code).
ACCEPTED_SETTLED = frozenset({"ACSC", "ACCC"})  # settlement completed (debtor's / creditor's bank)
IN_PROGRESS = frozenset({"RCVD", "ACTC", "ACCP", "ACSP", "ACWC", "ACWP", "ACFC", "PDNG", "PATC"})
REJECTED = "RJCT"
PARTIAL = "PART"  # group or payment information only: read each transaction's own status


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """The status a pain.002 gives one transaction: its own (`level` TX), else that of its
    payment information block (PMTINF), else that of the file (GRP), with that level's reason."""

    end_to_end_id: str
    status: str  # ACSC, ACCC, ACSP, ACTC, ACCP, ACWC, PDNG, RJCT ...
    reason_code: str | None
    level: str = "TX"

    @property
    def settled(self) -> bool:
        return self.status in ACCEPTED_SETTLED

    @property
    def rejected(self) -> bool:
        return self.status == REJECTED


@dataclass(frozen=True, slots=True)
class PaymentInformationStatus:
    payment_information_id: str
    status: str | None
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class PaymentStatusReport:
    """A parsed pain.002 (.001.03 to .001.10): the group status of one file, each payment
    information block's status and the status each transaction ends with."""

    message_id: str
    original_message_id: str
    group_status: str | None
    transactions: tuple[TransactionStatus, ...]
    group_reason_code: str | None = None
    payment_informations: tuple[PaymentInformationStatus, ...] = ()

    def status_of(self, end_to_end_id: str) -> TransactionStatus | None:
        return next((t for t in self.transactions if t.end_to_end_id == end_to_end_id), None)


def _reason(element: etree._Element) -> str | None:
    return _find_text(element, "{*}StsRsnInf/{*}Rsn/{*}Cd")


def _inherited(status: str | None) -> str | None:
    """A parent's status that says something of each of its transactions (PART does not)."""
    return status if status and status != PARTIAL else None


def parse_pain002(
    raw: bytes, file_transactions: Mapping[str, str] | Sequence[str] | None = None
) -> PaymentStatusReport:
    """Read a pain.002 at its three levels. `file_transactions` are the end-to-end ids of the
    file the report answers (optionally mapped to their payment information id): a group or
    payment-information status then applies to each of them that has no status of its own."""
    try:
        root = _parse(raw)
    except etree.XMLSyntaxError:
        raise ValueError("a pain.002 report is XML") from None
    report = root.find("{*}CstmrPmtStsRpt")
    if report is None:
        raise ValueError("not a pain.002 customer payment status report")
    group = report.find("{*}OrgnlGrpInfAndSts")
    group_status = _find_text(group, "{*}GrpSts") if group is not None else None
    group_reason = _reason(group) if group is not None else None
    infos: list[PaymentInformationStatus] = []
    statuses: dict[str, TransactionStatus] = {}
    for block in report.iterfind("{*}OrgnlPmtInfAndSts"):
        info_id = _find_text(block, "{*}OrgnlPmtInfId") or ""
        info_status = _find_text(block, "{*}PmtInfSts")
        info_reason = _reason(block)
        infos.append(PaymentInformationStatus(info_id, info_status, info_reason))
        for tx in block.iterfind("{*}TxInfAndSts"):
            end_to_end_id = _find_text(tx, "{*}OrgnlEndToEndId") or ""
            own = _find_text(tx, "{*}TxSts")
            if own:
                statuses[end_to_end_id] = TransactionStatus(end_to_end_id, own, _reason(tx), "TX")
            elif _inherited(info_status):
                statuses[end_to_end_id] = TransactionStatus(
                    end_to_end_id,
                    info_status,  # type: ignore[arg-type]  # _inherited: a status
                    info_reason,
                    "PMTINF",
                )
            elif _inherited(group_status):
                statuses[end_to_end_id] = TransactionStatus(
                    end_to_end_id,
                    group_status,  # type: ignore[arg-type]  # _inherited: a status
                    group_reason,
                    "GRP",
                )
    if file_transactions is not None:
        owners = (
            file_transactions
            if isinstance(file_transactions, Mapping)
            else dict.fromkeys(file_transactions, "")
        )
        by_info = {info.payment_information_id: info for info in infos}
        for end_to_end_id, info_id in owners.items():
            if end_to_end_id in statuses:
                continue
            info = by_info.get(info_id) if info_id else (infos[0] if len(infos) == 1 else None)
            if info is not None and _inherited(info.status):
                statuses[end_to_end_id] = TransactionStatus(
                    end_to_end_id,
                    info.status,  # type: ignore[arg-type]  # _inherited: a status
                    info.reason_code,
                    "PMTINF",
                )
            elif _inherited(group_status):
                statuses[end_to_end_id] = TransactionStatus(
                    end_to_end_id,
                    group_status,  # type: ignore[arg-type]  # _inherited: a status
                    group_reason,
                    "GRP",
                )
    return PaymentStatusReport(
        message_id=_find_text(report, "{*}GrpHdr/{*}MsgId") or "",
        original_message_id=_find_text(group, "{*}OrgnlMsgId") or "" if group is not None else "",
        group_status=group_status,
        transactions=tuple(statuses.values()),
        group_reason_code=group_reason,
        payment_informations=tuple(infos),
    )


def pain002_outcomes(raw: bytes, now: datetime) -> tuple[str, list[PaymentOutcome]]:
    """What a pain.002 pushed by the bank says has ended: each rejected transaction fails with
    its reason; a file rejected as a whole (GrpSts RJCT, or a payment information block's
    PmtInfSts RJCT, with no transaction statuses) is one FILE_REJECTED outcome naming the
    original message id (our batch id), which payout applies to every transaction of it.
    Acceptances change nothing here: settlement is read from the camt.054 bookings."""
    try:
        report = parse_pain002(raw)
    except ValueError:
        raise CallbackRejected("malformed_body", "unreadable pain.002") from None
    if not report.message_id:
        raise CallbackRejected("malformed_body", "status report without message id")
    root = _parse(raw)
    amounts = {
        (_find_text(tx, "{*}OrgnlEndToEndId") or ""): _find_text(
            tx, "{*}OrgnlTxRef/{*}Amt/{*}InstdAmt"
        )
        for tx in root.iterfind("{*}CstmrPmtStsRpt/{*}OrgnlPmtInfAndSts/{*}TxInfAndSts")
    }
    outcomes: list[PaymentOutcome] = []
    for status in report.transactions:
        if (
            not status.rejected
            or not status.end_to_end_id
            or len(status.end_to_end_id) > MAX_REFERENCE
        ):
            continue
        try:
            amount = whole_vnd_text(amounts.get(status.end_to_end_id))
        except InvalidAmount:
            amount = 0  # a rejection moves no money: its amount is only information
        outcomes.append(
            PaymentOutcome(
                event_id=f"{report.message_id[:MAX_REFERENCE]}|RJCT|{status.end_to_end_id}",
                end_to_end_id=status.end_to_end_id,
                status="FAILED",
                amount=amount,
                reason_code=(status.reason_code or "")[:MAX_REFERENCE] or None,
                bank_reference=None,
                occurred_at=now,
            )
        )
    whole_file = [(report.group_status, report.group_reason_code)] + [
        (info.status, info.reason_code) for info in report.payment_informations
    ]
    file_refusals = [reason for status, reason in whole_file if status == REJECTED]
    if file_refusals and not amounts and report.original_message_id:
        rejected_file = file_refusals[0]
        outcomes.append(
            PaymentOutcome(
                event_id=f"{report.message_id[:MAX_REFERENCE]}|GRP|RJCT",
                end_to_end_id=report.original_message_id[:MAX_REFERENCE],
                status="FILE_REJECTED",
                amount=0,
                reason_code=(rejected_file or "")[:MAX_REFERENCE] or None,
                bank_reference=None,
                occurred_at=now,
            )
        )
    return report.message_id, outcomes


# Why an entry of a notification or statement cannot be read (the reported reason codes).
UNREADABLE_CURRENCY = "CURRENCY_NOT_VND"
UNREADABLE_FRACTION = "AMOUNT_FRACTION"
UNREADABLE_AMOUNT = "AMOUNT_INVALID"
UNREADABLE_BATCH = "BATCH_MISMATCH"
UNREADABLE_REFERENCE = "NO_END_TO_END_ID"
UNREADABLE_STATUS = "ENTRY_STATUS"
UNREADABLE_DATE = "NO_BOOKING_DATE"
UNREADABLE_DIRECTION = "CREDIT_DEBIT"
# Entry statuses (ExternalEntryStatus1Code, a plain code before .08).
BOOKED = "BOOK"
PENDING_STATUSES = frozenset({"PDNG", "FUTR"})
INFORMATION = "INFO"
NOT_PROVIDED = "NOTPROVIDED"
RETURN_SUB_FAMILY = "RRTN"
MAX_REFERENCE = 35


class _Unreadable(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _vnd(amount: etree._Element | None) -> int:
    """An `Amt`/`TtlAmt` element in whole VND, read exactly (its Ccy must be VND)."""
    if amount is None:
        raise _Unreadable(UNREADABLE_AMOUNT)
    currency = amount.get("Ccy")
    if currency is not None and currency.strip() != "VND":
        raise _Unreadable(UNREADABLE_CURRENCY)
    try:
        return whole_vnd_text((amount.text or "").strip())
    except FractionOfDong:
        raise _Unreadable(UNREADABLE_FRACTION) from None
    except InvalidAmount:
        raise _Unreadable(UNREADABLE_AMOUNT) from None


def _local(element: etree._Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: etree._Element, *path: str) -> etree._Element | None:
    """The first element down `path` of local names, whatever the namespace (versions differ
    only by it)."""
    current: etree._Element | None = element
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if _local(c) == name), None)
    return current


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if _local(c) == name]


def _child_text(element: etree._Element, *path: str) -> str | None:
    found = _child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _entry_status(entry: etree._Element) -> str | None:
    """`Sts` is a code up to .07 (`<Sts>BOOK</Sts>`) and a choice from .08 (`<Sts><Cd>BOOK`)."""
    status = _child(entry, "Sts")
    if status is None:
        return None
    code = _child_text(status, "Cd")
    if code is None and len(status) == 0:
        code = (status.text or "").strip() or None
    return code


def _when(entry: etree._Element, fallback: datetime | None) -> datetime:
    for tag in ("BookgDt", "ValDt"):
        date_element = _child(entry, tag)
        if date_element is None:
            continue
        moment = _child_text(date_element, "DtTm")
        try:
            parsed = parse_datetime(moment)  # None only for no text
            if parsed is not None:
                return parsed
            day = _child_text(date_element, "Dt")
            if day:
                return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
        except ValueError:
            raise _Unreadable(UNREADABLE_DATE) from None
    if fallback is None:
        raise _Unreadable(UNREADABLE_DATE)
    return fallback


def entry_identity(entry: etree._Element) -> str:
    """What makes an entry the same entry when it is delivered again: the bank's own reference
    (`AcctSvcrRef`), else `NtryRef`, else a digest of the entry's canonical XML."""
    for tag in ("AcctSvcrRef", "NtryRef"):
        reference = _child_text(entry, tag)
        if reference and len(reference) <= MAX_REFERENCE and reference.isprintable():
            return reference
    canonical = etree.tostring(entry, method="c14n", exclusive=True, with_comments=False)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()[:40]


def _transaction_amount(details: etree._Element) -> etree._Element | None:
    """A transaction's amount: `Amt` (from .04), else `AmtDtls/TxAmt/Amt` or `InstdAmt/Amt`."""
    amount = _child(details, "Amt")
    if amount is None:
        amount = _child(details, "AmtDtls", "TxAmt", "Amt")
    if amount is None:
        amount = _child(details, "AmtDtls", "InstdAmt", "Amt")
    return amount


def _end_to_end_id(details: etree._Element) -> str:
    value = _child_text(details, "Refs", "EndToEndId")
    if not value or value.upper() == NOT_PROVIDED or len(value) > MAX_REFERENCE:
        raise _Unreadable(UNREADABLE_REFERENCE)
    return value


def _entry_outcomes(entry: etree._Element, fallback_time: datetime | None) -> list[PaymentOutcome]:
    """The outcomes one `Ntry` reports: one per `TxDtls` of a batch booking. Raises _Unreadable
    when any part cannot be read, so nothing is taken from a half-read entry."""
    status = _entry_status(entry)
    if status == INFORMATION:
        return []
    if status != BOOKED and status not in PENDING_STATUSES:
        raise _Unreadable(UNREADABLE_STATUS)
    entry_amount = _vnd(_child(entry, "Amt"))
    direction = _child_text(entry, "CdtDbtInd")
    reversal = (_child_text(entry, "RvslInd") or "").lower() in ("true", "1")
    # BkTxCd/Domn is a hint only; proprietary codes (BkTxCd/Prtry) are the bank's own and ignored.
    sub_family = _child_text(entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd")
    occurred_at = _when(entry, fallback_time)
    bank_reference = _child_text(entry, "AcctSvcrRef")

    blocks = _children(entry, "NtryDtls")
    transactions: list[etree._Element] = []
    for block in blocks:
        own = _children(block, "TxDtls")
        batch = _child(block, "Btch")
        if batch is not None:
            declared = _child_text(batch, "NbOfTxs")
            if declared is not None and (not declared.isdigit() or int(declared) != len(own)):
                raise _Unreadable(UNREADABLE_BATCH)
            total = _child(batch, "TtlAmt")
            if total is not None and _vnd(total) != sum(_vnd(_transaction_amount(t)) for t in own):
                raise _Unreadable(UNREADABLE_BATCH)
        transactions.extend(own)
    if not transactions:
        raise _Unreadable(UNREADABLE_REFERENCE)
    if len(transactions) == 1 and _transaction_amount(transactions[0]) is None:
        amounts = [entry_amount]
    else:
        amounts = [_vnd(_transaction_amount(t)) for t in transactions]
        if sum(amounts) != entry_amount:
            raise _Unreadable(UNREADABLE_BATCH)

    identity = entry_identity(entry)
    outcomes: list[PaymentOutcome] = []
    seen: set[str] = set()
    for details, amount in zip(transactions, amounts, strict=True):
        end_to_end_id = _end_to_end_id(details)
        if end_to_end_id in seen:
            raise _Unreadable(UNREADABLE_BATCH)
        seen.add(end_to_end_id)
        return_reason = _child_text(details, "RtrInf", "Rsn", "Cd")
        has_return = _child(details, "RtrInf") is not None
        reference = _child_text(details, "Refs", "AcctSvcrRef") or bank_reference
        if status in PENDING_STATUSES:
            kind, outcome_status, reason = "PDNG", "PENDING", None
        elif direction == "DBIT" and not reversal:
            kind, outcome_status, reason = "BOOK", "SETTLED", None
        elif direction == "CRDT" and reversal and sub_family != RETURN_SUB_FAMILY:
            # Our debit taken back by the bank.
            kind, outcome_status, reason = "RVSL", "REVERSED", return_reason
        elif direction == "CRDT" and (has_return or sub_family == RETURN_SUB_FAMILY):
            kind, outcome_status, reason = "RTRN", "RETURNED", return_reason
        elif direction == "CRDT":
            continue  # money coming in that is no payment of ours
        else:
            # A debit reversing a credit, or no direction at all: not ours to guess.
            raise _Unreadable(UNREADABLE_DIRECTION)
        outcomes.append(
            PaymentOutcome(
                event_id=f"{identity}|{kind}|{end_to_end_id}",
                end_to_end_id=end_to_end_id,
                status=outcome_status,  # type: ignore[arg-type]
                amount=amount,
                reason_code=reason[:MAX_REFERENCE] if reason else None,
                bank_reference=reference[:MAX_REFERENCE] if reference else None,
                occurred_at=occurred_at,
            )
        )
    return outcomes


def _unreadable_outcome(entry: etree._Element, code: str, now: datetime) -> PaymentOutcome:
    """An entry that cannot be read, reported with why; it settles nothing."""
    end_to_end_id = ""
    for details in entry.iterfind("{*}NtryDtls/{*}TxDtls"):
        named = _child_text(details, "Refs", "EndToEndId") or ""
        end_to_end_id = "" if named.upper() == NOT_PROVIDED else named[:MAX_REFERENCE]
        break
    return PaymentOutcome(
        event_id=f"{entry_identity(entry)}|UNREADABLE",
        end_to_end_id=end_to_end_id,
        status="UNREADABLE",
        amount=0,
        reason_code=code,
        bank_reference=None,
        occurred_at=now,
    )


# camt.054 notifications, camt.053 statements and camt.052 reports share their entries.
_CAMT_DOCUMENTS = {
    "BkToCstmrDbtCdtNtfctn": "Ntfctn",
    "BkToCstmrStmt": "Stmt",
    "BkToCstmrAcctRpt": "Rpt",
}


def parse_camt(raw: bytes, now: datetime | None = None) -> tuple[str, list[PaymentOutcome]]:
    """The message id (the delivery id) and the outcomes of a camt.054 notification, a camt.053
    statement or a camt.052 report, any version (.001.04 to .001.10): booked debits settle,
    pending entries are pending, information entries are skipped, reversals and return credits
    are reported as such, each transaction of a batch booking is its own outcome. An entry that
    cannot be read becomes one UNREADABLE outcome with the reason; the others still count."""
    try:
        root = _parse(raw)
    except etree.XMLSyntaxError:
        raise CallbackRejected("malformed_body", "callback body is not XML") from None
    document = next(
        (
            (child, _CAMT_DOCUMENTS[_local(child)])
            for child in root
            if _local(child) in _CAMT_DOCUMENTS
        ),
        None,
    )
    if document is None:
        raise CallbackRejected("malformed_body", "not a camt.052, camt.053 or camt.054 message")
    message, block_name = document
    message_id = _child_text(message, "GrpHdr", "MsgId")
    if not message_id:
        raise CallbackRejected("malformed_body", "notification without message id")
    created = _child_text(message, "GrpHdr", "CreDtTm")
    try:
        fallback_time = parse_datetime(created) if created else None
    except ValueError:
        fallback_time = None
    received = now or datetime.now(UTC)
    outcomes: list[PaymentOutcome] = []
    for block in _children(message, block_name):
        for entry in _children(block, "Ntry"):
            try:
                outcomes.extend(_entry_outcomes(entry, fallback_time))
            except _Unreadable as unreadable:
                outcomes.append(
                    _unreadable_outcome(entry, unreadable.code, fallback_time or received)
                )
    return message_id, outcomes


def parse_camt054(raw: bytes, now: datetime | None = None) -> tuple[str, list[PaymentOutcome]]:
    return parse_camt(raw, now)


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
        banks: Mapping[str, Bank] | None = None,
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

    async def status_report(
        self, message_id: str, file_transactions: Sequence[str] | None = None
    ) -> PaymentStatusReport | None:
        """The bank's pain.002 for a file we sent (message id = batch id), a group or payment
        information status applied to `file_transactions` (the file's end-to-end ids); None if
        the bank never received that file."""
        response = await self._http.send(
            "GET", f"/iso/{self.counterparty}/files/{message_id}/status"
        )
        if response.status_code == 404 and self._http.error_code(response) == "NOT_FOUND":
            return None
        if response.status_code != 200:
            raise self._http.refuse(response)
        return parse_pain002(response.content, file_transactions)

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
        try:
            root = _parse(raw_body)
        except etree.XMLSyntaxError:
            raise CallbackRejected("malformed_body", "callback body is not XML") from None
        if any(_local(child) == "CstmrPmtStsRpt" for child in root):
            return pain002_outcomes(raw_body, now)
        return parse_camt(raw_body, now)

    async def statement(self, day: date) -> list[StatementEntry]:
        return await json_statement(
            self._http, f"/iso/{self.counterparty}/statements/{day.isoformat()}"
        )
