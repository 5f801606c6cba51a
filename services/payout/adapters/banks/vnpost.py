"""The provincial post office (VNPost): cash paid at counters or at home, one cash list per
commune, and signed confirmations of each handover or return."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date, datetime

from ._callbacks import authenticate_callback
from ._http import CounterpartyHttp, parse_datetime
from .base import (
    VNPOST,
    BankError,
    CallbackRejected,
    NameInquiryResult,
    PaymentBatch,
    PaymentOutcome,
    PaymentStatus,
    PermanentBankError,
    StatementEntry,
    SubmitResult,
    TransientBankError,
    UnknownOutcome,
)
from .napas import (
    json_statement,
    optional_text,
    required_int,
    required_str,
    required_time,
    submit_answer,
    typed_json_events,
    whole_vnd_or_none,
)

EVENT_STATUSES = {"cash.paid": "PAID_CASH", "cash.returned": "RETURNED"}
ITEM_STATUSES = {"PENDING": "PENDING", "PAID": "PAID_CASH", "RETURNED": "RETURNED"}


def cash_list_id(batch_id: str, commune_code: str) -> str:
    """Stable per batch and commune, so a resent batch resends the same lists."""
    return f"{batch_id}-{commune_code}"


class VnpostChannel:
    """Cash payments: `submit_batch` splits a batch into one cash list per commune."""

    style = "vnpost"

    def __init__(
        self,
        http: CounterpartyHttp,
        secret: str,
        tolerance_seconds: int = 300,
        concurrency: int = 4,
    ) -> None:
        self.counterparty = VNPOST
        self._http = http
        self._secret = secret
        self._tolerance = tolerance_seconds
        self._concurrency = max(1, concurrency)

    async def name_inquiry(self, account_number: str) -> NameInquiryResult:
        return NameInquiryResult("BANK_NOT_SUPPORTED", None)

    def cash_lists(self, batch: PaymentBatch) -> list[dict]:
        if batch.counterparty != VNPOST:
            raise ValueError(f"batch for {batch.counterparty} sent to the post office")
        if not batch.totals_match():
            raise PermanentBankError(
                "CONTROL_TOTALS_MISMATCH", "batch control totals differ from its items"
            )
        by_commune: dict[str, list] = {}
        for item in batch.items:
            if not item.commune_code:
                raise ValueError("a cash payment needs the commune where it is paid")
            if type(item.amount) is not int:
                raise TypeError("amounts are whole VND (int)")
            by_commune.setdefault(item.commune_code, []).append(item)
        period = batch.execution_date.strftime("%Y-%m")
        return [
            {
                "list_id": cash_list_id(batch.batch_id, commune),
                "period": period,
                "commune_code": commune,
                "control_count": len(items),
                "control_sum": sum(item.amount for item in items),
                "items": [
                    {
                        "end_to_end_id": item.end_to_end_id,
                        "beneficiary_name": item.account_name,
                        "amount": item.amount,
                        "commune_code": commune,
                        "remittance_info": item.remittance_info,
                    }
                    for item in items
                ],
            }
            for commune, items in sorted(by_commune.items())
        ]

    async def submit_batch(self, batch: PaymentBatch) -> SubmitResult:
        """Send every commune's list; each list is its own request under its own key, so each
        answer counts for its items only: taken (accepted, or rejected one by one), refused
        outright with a code (its items rejected with it), in doubt (a timeout, a 502/504, a
        duplicate or unreadable answer: ask for their status) or not taken (a transient failure:
        send that list again). Lists already taken are never sent again because of another."""
        lists = self.cash_lists(batch)
        gate = asyncio.Semaphore(self._concurrency)

        async def send(cash_list: dict) -> tuple[list[str], list[tuple[str, str]]] | BankError:
            async with gate:
                try:
                    response = await self._http.send(
                        "POST",
                        "/vnpost/cash-lists",
                        json_body=cash_list,
                        headers={"Idempotency-Key": cash_list["list_id"]},
                        moves_money=True,
                    )
                    return submit_answer(self._http, response)
                except BankError as exc:
                    return exc

        answers = await asyncio.gather(*(send(cash_list) for cash_list in lists))
        accepted: list[str] = []
        rejected: list[tuple[str, str]] = []
        in_doubt: list[str] = []
        not_sent: list[str] = []
        for cash_list, answer in zip(lists, answers, strict=True):
            ids = [item["end_to_end_id"] for item in cash_list["items"]]
            if isinstance(answer, UnknownOutcome):
                in_doubt.extend(ids)
            elif isinstance(answer, TransientBankError):
                not_sent.extend(ids)
            elif isinstance(answer, PermanentBankError):
                rejected.extend((e2e, answer.code) for e2e in ids)
            elif isinstance(answer, BankError):
                in_doubt.extend(ids)
            else:
                accepted.extend(answer[0])
                rejected.extend(answer[1])
        return SubmitResult(
            accepted=tuple(accepted),
            rejected=tuple(rejected),
            in_doubt=tuple(in_doubt),
            not_sent=tuple(not_sent),
        )

    async def payment_status(self, end_to_end_id: str) -> PaymentStatus:
        response = await self._http.send("GET", f"/vnpost/items/{end_to_end_id}")
        if response.status_code == 404 and self._http.error_code(response) == "NOT_FOUND":
            return PaymentStatus(end_to_end_id, "UNKNOWN_TO_BANK", None, None, None, None)
        if response.status_code != 200:
            raise self._http.refuse(response)
        body = self._http.json(response)
        status = ITEM_STATUSES.get(body.get("status"))
        if status is None:
            raise PermanentBankError("UNEXPECTED_STATUS", "post office: unexpected item status")
        return PaymentStatus(
            end_to_end_id=body.get("end_to_end_id", end_to_end_id),
            status=status,  # type: ignore[arg-type]
            reason_code=optional_text(body, "return_reason"),
            amount=whole_vnd_or_none(body.get("amount")),
            bank_reference=optional_text(body, "receipt_number"),
            settled_at=parse_datetime(body.get("settled_at")),
        )

    def parse_callback(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> tuple[str, list[PaymentOutcome]]:
        authenticate_callback(
            self.counterparty, self._secret, headers, raw_body, now, self._tolerance
        )
        delivery_id, events = typed_json_events(raw_body, EVENT_STATUSES)
        outcomes = []
        for event, status in events:
            paid_on_text = event.get("paid_on")
            try:
                paid_on = date.fromisoformat(paid_on_text) if paid_on_text else None
            except (TypeError, ValueError):
                raise CallbackRejected("malformed_body", "paid_on is not a date") from None
            if status == "PAID_CASH" and paid_on is None:
                raise CallbackRejected("malformed_body", "a cash payment needs paid_on")
            outcomes.append(
                PaymentOutcome(
                    event_id=required_str(event, "event_id"),
                    end_to_end_id=required_str(event, "end_to_end_id"),
                    status=status,  # type: ignore[arg-type]
                    amount=required_int(event, "amount"),
                    reason_code=event.get("return_reason"),
                    bank_reference=event.get("receipt_number"),
                    occurred_at=required_time(event, "occurred_at"),
                    paid_on=paid_on,
                    staff_id=event.get("staff_id"),
                )
            )
        return delivery_id, outcomes

    async def statement(self, day: date) -> list[StatementEntry]:
        return await json_statement(
            self._http, f"/vnpost/statements/{day.isoformat()}", reference_field="receipt_number"
        )
