"""ISO 20022 messages of the file bank: pain.001.001.09 in (validated against the official
schema), pain.002.001.10 status reports and camt.054.001.08 notifications out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from lxml import etree

from shared.periods import vietnam_date

from .state import Booking, IsoMessage, ItemIn, Transfer, iso_utc
from .store import FileLine

PAIN001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002_NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
CAMT054_NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
P = f"{{{PAIN001_NS}}}"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class InvalidFile(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ControlTotalsMismatch(Exception):
    pass


@lru_cache(maxsize=1)
def pain001_schema() -> etree.XMLSchema:
    return etree.XMLSchema(
        etree.parse(str(Path(__file__).with_name("data") / "pain.001.001.09.xsd"))
    )


@dataclass(slots=True)
class Pain001:
    message_id: str
    number_of_transactions: int
    control_sum: Decimal | None
    debtor_account: str | None
    payment_infos: list[tuple[str, list[ItemIn]]]

    @property
    def items(self) -> list[ItemIn]:
        return [item for _, items in self.payment_infos for item in items]


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _amount(text: str | None) -> Decimal:
    try:
        return Decimal(text or "")
    except InvalidOperation:
        return Decimal(-1)


_PMT_ID, _E2E, _AMT, _INSTD = f"{P}PmtId", f"{P}EndToEndId", f"{P}Amt", f"{P}InstdAmt"
_CDTR_AGT, _CDTR_ACCT, _FIN = f"{P}CdtrAgt", f"{P}CdtrAcct", f"{P}FinInstnId"
_MEMBER = f"{P}ClrSysMmbId/{P}MmbId"
_BIC = f"{P}BICFI"
_OTHER_ID = f"{P}Id/{P}Othr/{P}Id"
_IBAN = f"{P}Id/{P}IBAN"


def _transaction(
    tx: etree._Element, bins_by_bic: Mapping[str, str], default_bin: str
) -> tuple[ItemIn, Decimal]:
    """One CdtTrfTxInf and its amount as written, reading direct children only (files hold
    thousands of them)."""
    end_to_end_id = ""
    instructed = None
    agent_bin = None
    account = None
    for child in tx:
        tag = child.tag
        if tag == _PMT_ID:
            end_to_end_id = (child.findtext(_E2E) or "").strip()
        elif tag == _AMT:
            instructed = child.find(_INSTD)
        elif tag == _CDTR_AGT:
            institution = child.find(_FIN)
            if institution is not None:
                agent_bin = institution.findtext(_MEMBER)
                if agent_bin is None:
                    bic = institution.findtext(_BIC)
                    agent_bin = bins_by_bic.get(bic.strip()[:8]) if bic else None
        elif tag == _CDTR_ACCT:
            account = child.findtext(_OTHER_ID) or child.findtext(_IBAN)
    amount = _amount(instructed.text if instructed is not None else None)
    whole = amount == amount.to_integral_value() and amount > 0
    rejection = None
    if instructed is None:
        rejection = "AM12"
    elif account is None:
        rejection = "AC01"
    item = ItemIn(
        end_to_end_id=end_to_end_id,
        amount=int(amount) if whole else -1,
        currency=(instructed.get("Ccy") if instructed is not None else "") or "",
        account_number=account.strip() if account else None,
        account_bin=agent_bin.strip() if agent_bin else default_bin,
        rejection=rejection,
    )
    return item, (amount if instructed is not None else Decimal(0))


def _payment_info(
    info: etree._Element, info_id: str, bins_by_bic: Mapping[str, str], default_bin: str
) -> tuple[list[ItemIn], Decimal]:
    """The transactions of one PmtInf and their amounts' total, within the block's own
    control totals when it declares them."""
    items: list[ItemIn] = []
    total = Decimal(0)
    for tx in info.iterfind(f"{P}CdtTrfTxInf"):
        item, written = _transaction(tx, bins_by_bic, default_bin)
        item.payment_info_id = info_id or None
        items.append(item)
        total += written
    count_text = _text(info, f"{P}NbOfTxs")
    sum_text = _text(info, f"{P}CtrlSum")
    if count_text is not None and int(count_text) != len(items):
        raise ControlTotalsMismatch()
    if sum_text is not None and Decimal(sum_text) != total:
        raise ControlTotalsMismatch()
    return items, total


def parse_pain001(raw: bytes, bins_by_bic: Mapping[str, str], default_bin: str) -> Pain001:
    """Parse and validate a pain.001.001.09 file; raise InvalidFile or ControlTotalsMismatch."""
    try:
        document = etree.fromstring(raw, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidFile([f"not well-formed XML: {exc.msg}"]) from None
    schema = pain001_schema()
    if not schema.validate(document):
        raise InvalidFile([f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5]])
    initiation = document.find(f"{P}CstmrCdtTrfInitn")
    header = initiation.find(f"{P}GrpHdr")
    declared_count = int(_text(header, f"{P}NbOfTxs") or "0")
    declared_sum_text = _text(header, f"{P}CtrlSum")
    declared_sum = Decimal(declared_sum_text) if declared_sum_text else None

    payment_infos: list[tuple[str, list[ItemIn]]] = []
    debtor_account = None
    count = 0
    total = Decimal(0)
    for info in initiation.iterfind(f"{P}PmtInf"):
        debtor_account = (
            debtor_account
            or _text(info, f"{P}DbtrAcct/{P}Id/{P}Othr/{P}Id")
            or _text(info, f"{P}DbtrAcct/{P}Id/{P}IBAN")
        )
        info_id = _text(info, f"{P}PmtInfId") or ""
        items, info_total = _payment_info(info, info_id, bins_by_bic, default_bin)
        count += len(items)
        total += info_total
        payment_infos.append((info_id, items))
    if declared_count != count or (declared_sum is not None and declared_sum != total):
        raise ControlTotalsMismatch()
    return Pain001(
        message_id=_text(header, f"{P}MsgId") or "",
        number_of_transactions=declared_count,
        control_sum=declared_sum,
        debtor_account=debtor_account,
        payment_infos=payment_infos,
    )


# A transfer's status in a pain.002: settled (and what came after it: a return or a reversal
# is reported in camt.054, not here), rejected, or still pending.
TX_STATUS = {
    "PENDING": "PDNG",
    "SETTLED": "ACSC",
    "RETURNED": "ACSC",
    "REVERSED": "ACSC",
    "FAILED": "RJCT",
}


# A transaction in a pain.002: end-to-end id, status, reason, and the bank's reference and the
# amount of the transfer when it was taken.
Row = tuple[str, str, str | None, str | None, int | None]


_TAGS: dict[tuple[str, str], str] = {}


def _el(
    parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str
) -> etree._Element:
    qualified = _TAGS.get((ns, tag))
    if qualified is None:
        qualified = _TAGS[(ns, tag)] = f"{{{ns}}}{tag}"
    element = (
        etree.SubElement(parent, qualified, attrs) if attrs else etree.SubElement(parent, qualified)
    )
    if text is not None:
        element.text = text
    return element


def _reason(parent: etree._Element, ns: str, code: str) -> None:
    _el(_el(_el(parent, ns, "StsRsnInf"), ns, "Rsn"), ns, "Cd", code)


def message_id_of(raw: bytes) -> str | None:
    """The MsgId of a pain.001 that failed validation, when it can still be read (to answer it
    with a pain.002); None for a document that is not even XML."""
    try:
        document = etree.fromstring(raw, parser=_PARSER)
    except etree.XMLSyntaxError:
        return None
    found = document.findtext(f"{P}CstmrCdtTrfInitn/{P}GrpHdr/{P}MsgId")
    found = found.strip() if found else None
    return found if found and len(found) <= 35 else None


def build_pain002(
    message: IsoMessage,
    lines: Iterable[FileLine],
    status_id: str,
    now: datetime,
    only: Iterable[tuple[str, str]] | None = None,
) -> bytes:
    """The pain.002.001.10 of one file. A file refused as a whole has a group status RJCT with
    its reason and no transaction statuses. Otherwise each transaction's status (ACSC, PDNG,
    RJCT with its reason) under its payment information block (`lines`: the file's transactions
    as the store gives them), and the group status that sums
    them up (ACSC, PDNG, PART, RJCT); with `only` (end-to-end id, reason), just those rejected
    transactions are listed (the report the bank sends when it rejects some)."""
    ns = PAIN002_NS
    root = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})
    report = _el(root, ns, "CstmrPmtStsRpt")
    header = _el(report, ns, "GrpHdr")
    _el(header, ns, "MsgId", status_id)
    _el(header, ns, "CreDtTm", iso_utc(now))
    original = _el(report, ns, "OrgnlGrpInfAndSts")
    _el(original, ns, "OrgnlMsgId", message.message_id)
    _el(original, ns, "OrgnlMsgNmId", "pain.001.001.09")
    if message.number_of_transactions:
        _el(original, ns, "OrgnlNbOfTxs", str(message.number_of_transactions))
        _el(original, ns, "OrgnlCtrlSum", str(message.control_sum))
    if message.group_rejection is not None:
        _el(original, ns, "GrpSts", "RJCT")
        _reason(original, ns, message.group_rejection)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    per_info = _transaction_rows(lines)
    statuses = [row for _, rows in per_info for row in rows]
    _el(original, ns, "GrpSts", _group_status({row[1] for row in statuses}))
    _counts_per_status(original, ns, statuses)
    listed = dict(only) if only is not None else None
    for info_id, rows in per_info:
        if listed is not None:
            rows = [row for row in rows if row[0] in listed and row[1] == "RJCT"]
            if not rows:
                continue
        _payment_info_status(report, ns, info_id, rows)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _transaction_rows(lines: Iterable[FileLine]) -> list[tuple[str, list[Row]]]:
    """Each payment information block's transactions: refused at intake, or as taken."""
    per_info: list[tuple[str, list[Row]]] = []
    rows: list[Row] = []
    current = None
    for block, info_id, e2e, refusal, status, reason, reference, amount in lines:
        if block != current:
            current, rows = block, []
            per_info.append((info_id, rows))
        if status is None:  # never taken
            if refusal is not None:
                rows.append((e2e, "RJCT", refusal, None, None))
            continue
        rows.append((e2e, TX_STATUS[status], reason, reference, amount))
    return per_info


def _group_status(codes: set[str]) -> str:
    if codes == {"RJCT"}:
        return "RJCT"
    if "RJCT" in codes:
        return "PART"
    if "PDNG" in codes:
        return "PDNG"
    return "ACSC"


def _counts_per_status(original: etree._Element, ns: str, statuses: list[Row]) -> None:
    for code in ("ACSC", "PDNG", "RJCT"):
        counted = [row for row in statuses if row[1] == code]
        if counted:
            per_status = _el(original, ns, "NbOfTxsPerSts")
            _el(per_status, ns, "DtldNbOfTxs", str(len(counted)))
            _el(per_status, ns, "DtldSts", code)
            _el(per_status, ns, "DtldCtrlSum", str(sum(r[4] for r in counted if r[4] is not None)))


def _payment_info_status(report: etree._Element, ns: str, info_id: str, rows: list[Row]) -> None:
    info = _el(report, ns, "OrgnlPmtInfAndSts")
    _el(info, ns, "OrgnlPmtInfId", info_id)
    for e2e, code, reason, bank_reference, amount in rows:
        tx = _el(info, ns, "TxInfAndSts")
        _el(tx, ns, "OrgnlEndToEndId", e2e)
        _el(tx, ns, "TxSts", code)
        if reason and code == "RJCT":
            _reason(tx, ns, reason)
        if bank_reference is not None:
            _el(tx, ns, "AcctSvcrRef", bank_reference)
            reference = _el(tx, ns, "OrgnlTxRef")
            _el(_el(reference, ns, "Amt"), ns, "InstdAmt", str(amount), Ccy="VND")


# Bank transaction codes (ISO external code set): a credit transfer sent (SEPA-style ESCT) and
# a credit transfer's return (RRTN). A reversal carries the code of the entry it undoes.
DOMAIN, FAMILY = "PMNT", "ICDT"
SUB_FAMILY = {"debit": "ESCT", "reversal": "ESCT", "return": "RRTN"}


def _bank_code(parent: etree._Element, ns: str, sub_family: str) -> None:
    domain = _el(_el(parent, ns, "BkTxCd"), ns, "Domn")
    _el(domain, ns, "Cd", DOMAIN)
    family = _el(domain, ns, "Fmly")
    _el(family, ns, "Cd", FAMILY)
    _el(family, ns, "SubFmlyCd", sub_family)


def _vnd(parent: etree._Element, ns: str, amount: int) -> None:
    _el(parent, ns, "Amt", str(amount), Ccy="VND")


def _entry(block: etree._Element, ns: str, booking: Booking) -> None:
    """One Ntry in camt.054.001.08 element order: NtryRef?, Amt, CdtDbtInd, RvslInd?, Sts,
    BookgDt?, ValDt?, AcctSvcrRef?, BkTxCd, NtryDtls*, AddtlNtryInf?."""
    debit = booking.kind == "debit"
    direction = "DBIT" if debit else "CRDT"
    transfers = booking.transfers
    total = sum(t.amount for t in transfers)
    entry = _el(block, ns, "Ntry")
    if booking.entry_ref:
        _el(entry, ns, "NtryRef", booking.entry_ref)
    _vnd(entry, ns, total)
    _el(entry, ns, "CdtDbtInd", direction)
    if booking.kind == "reversal":
        _el(entry, ns, "RvslInd", "true")
    _el(_el(entry, ns, "Sts"), ns, "Cd", booking.status)
    if booking.status == "BOOK":
        _el(_el(entry, ns, "BookgDt"), ns, "DtTm", iso_utc(booking.booked_at))
    _el(_el(entry, ns, "ValDt"), ns, "Dt", vietnam_date(booking.booked_at).isoformat())
    _el(entry, ns, "AcctSvcrRef", booking.reference)
    _bank_code(entry, ns, SUB_FAMILY[booking.kind])
    details = _el(entry, ns, "NtryDtls")
    if booking.batch:
        _batch_details(details, ns, transfers, total, direction)
    for transfer in transfers:
        _transaction_details(details, ns, booking, transfer, direction)
    if booking.reverses:
        _el(entry, ns, "AddtlNtryInf", f"Reversal of entry {booking.reverses}")


def _batch_details(
    details: etree._Element, ns: str, transfers: list[Transfer], total: int, direction: str
) -> None:
    batch = _el(details, ns, "Btch")
    first = transfers[0]
    if first.message_id:
        _el(batch, ns, "MsgId", first.message_id)
    if first.payment_info_id:
        _el(batch, ns, "PmtInfId", first.payment_info_id)
    _el(batch, ns, "NbOfTxs", str(len(transfers)))
    _el(batch, ns, "TtlAmt", str(total), Ccy="VND")
    _el(batch, ns, "CdtDbtInd", direction)


def _transaction_details(
    details: etree._Element, ns: str, booking: Booking, transfer: Transfer, direction: str
) -> None:
    tx = _el(details, ns, "TxDtls")
    refs = _el(tx, ns, "Refs")
    if transfer.message_id:
        _el(refs, ns, "MsgId", transfer.message_id)
    _el(refs, ns, "AcctSvcrRef", transfer.reference)
    if transfer.payment_info_id:
        _el(refs, ns, "PmtInfId", transfer.payment_info_id)
    _el(refs, ns, "EndToEndId", transfer.end_to_end_id)
    _vnd(tx, ns, transfer.amount)
    _el(tx, ns, "CdtDbtInd", direction)
    if booking.kind == "return":
        info = _el(tx, ns, "RtrInf")
        original = _el(_el(info, ns, "OrgnlBkTxCd"), ns, "Domn")
        _el(original, ns, "Cd", DOMAIN)
        family = _el(original, ns, "Fmly")
        _el(family, ns, "Cd", FAMILY)
        _el(family, ns, "SubFmlyCd", SUB_FAMILY["debit"])
        _el(_el(info, ns, "Rsn"), ns, "Cd", booking.reason_code or "NARR")


def build_camt054(message_id: str, bookings: Iterable[Booking], now: datetime) -> bytes:
    """A camt.054.001.08 notification: one Ntfctn per debtor account, one Ntry per booking. No
    proprietary codes: the status is in Sts/Cd, the direction in CdtDbtInd, the kind of
    movement in BkTxCd/Domn, a reversal in RvslInd, a return in RtrInf."""
    ns = CAMT054_NS
    root = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})
    notification = _el(root, ns, "BkToCstmrDbtCdtNtfctn")
    header = _el(notification, ns, "GrpHdr")
    _el(header, ns, "MsgId", message_id)
    _el(header, ns, "CreDtTm", iso_utc(now))
    by_account: dict[str, list[Booking]] = {}
    for booking in bookings:
        by_account.setdefault(booking.transfers[0].debtor_account or "UNKNOWN", []).append(booking)
    for index, (account_id, account_bookings) in enumerate(by_account.items(), start=1):
        block = _el(notification, ns, "Ntfctn")
        _el(block, ns, "Id", f"{message_id[:30]}-{index}")
        _el(block, ns, "CreDtTm", iso_utc(now))
        account = _el(block, ns, "Acct")
        _el(_el(_el(account, ns, "Id"), ns, "Othr"), ns, "Id", account_id)
        _el(account, ns, "Ccy", "VND")
        for booking in account_bookings:
            _entry(block, ns, booking)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
