"""The file bank's callbacks read as the standard says, for the sandbox's tests: a camt.054
entry's status from Sts/Cd, its direction from CdtDbtInd, a reversal from RvslInd, a return from
RtrInf under bank transaction code family RRTN, one outcome per TxDtls; a pain.002's rejections
at group or transaction level."""

from __future__ import annotations

from typing import Any

from lxml import etree

CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
C = {"c": CAMT054}
S = {"s": PAIN002}


def entry_kind(entry: etree._Element) -> str:
    status = entry.findtext("c:Sts/c:Cd", namespaces=C)
    direction = entry.findtext("c:CdtDbtInd", namespaces=C)
    reversal = entry.findtext("c:RvslInd", namespaces=C) == "true"
    sub_family = entry.findtext("c:BkTxCd/c:Domn/c:Fmly/c:SubFmlyCd", namespaces=C)
    if status == "PDNG":
        return "PENDING"
    if status != "BOOK":
        return "INFO"
    if reversal:
        return "REVERSED"
    if direction == "CRDT" and sub_family == "RRTN":
        return "RETURNED"
    if direction == "DBIT":
        return "SETTLED"
    return "UNKNOWN"


def camt054_outcomes(root: etree._Element) -> tuple[str, list[dict[str, Any]]]:
    outcomes = []
    for entry in root.iterfind("c:BkToCstmrDbtCdtNtfctn/c:Ntfctn/c:Ntry", C):
        kind = entry_kind(entry)
        entry_id = entry.findtext("c:AcctSvcrRef", namespaces=C)
        for tx in entry.iterfind("c:NtryDtls/c:TxDtls", C):
            outcomes.append(
                {
                    "event_id": f"{entry_id}/{tx.findtext('c:Refs/c:AcctSvcrRef', namespaces=C)}",
                    "entry": entry_id,
                    "entry_ref": entry.findtext("c:NtryRef", namespaces=C),
                    "end_to_end_id": tx.findtext("c:Refs/c:EndToEndId", namespaces=C),
                    "amount": int(tx.findtext("c:Amt", namespaces=C)),
                    "reason_code": tx.findtext("c:RtrInf/c:Rsn/c:Cd", namespaces=C),
                    "type": kind,
                }
            )
    return root.findtext("c:BkToCstmrDbtCdtNtfctn/c:GrpHdr/c:MsgId", namespaces=C), outcomes


def pain002_outcomes(root: etree._Element) -> tuple[str, list[dict[str, Any]]]:
    """Rejections only (an accepted transaction's outcome comes in camt.054); a group-level
    rejection is kept as one outcome keyed by the original message id."""
    message_id = root.findtext("s:CstmrPmtStsRpt/s:GrpHdr/s:MsgId", namespaces=S)
    group = root.find("s:CstmrPmtStsRpt/s:OrgnlGrpInfAndSts", S)
    outcomes = []
    if (
        group.findtext("s:GrpSts", namespaces=S) == "RJCT"
        and root.find(".//s:TxInfAndSts", S) is None
    ):
        outcomes.append(
            {
                "event_id": message_id,
                "end_to_end_id": group.findtext("s:OrgnlMsgId", namespaces=S),
                "amount": 0,
                "type": "FILE_REJECTED",
                "reason_code": group.findtext("s:StsRsnInf/s:Rsn/s:Cd", namespaces=S),
            }
        )
    for tx in root.iterfind("s:CstmrPmtStsRpt/s:OrgnlPmtInfAndSts/s:TxInfAndSts", S):
        if tx.findtext("s:TxSts", namespaces=S) != "RJCT":
            continue
        e2e = tx.findtext("s:OrgnlEndToEndId", namespaces=S)
        amount = tx.findtext("s:OrgnlTxRef/s:Amt/s:InstdAmt", namespaces=S)
        outcomes.append(
            {
                "event_id": f"{message_id}/{e2e}",
                "end_to_end_id": e2e,
                "amount": int(amount) if amount else 0,
                "type": "FAILED",
                "reason_code": tx.findtext("s:StsRsnInf/s:Rsn/s:Cd", namespaces=S),
            }
        )
    return message_id, outcomes


def iso_outcomes(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    root = etree.fromstring(body)
    if root.tag == f"{{{PAIN002}}}Document":
        return pain002_outcomes(root)
    if root.tag == f"{{{CAMT054}}}Document":
        return camt054_outcomes(root)
    raise ValueError(f"not a camt.054.001.08 nor a pain.002.001.10: {root.tag}")
