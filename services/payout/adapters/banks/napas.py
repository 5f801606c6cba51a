"""Banks reached through a NAPAS-247-style real-time JSON API (the default for every BIN)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import httpx
import orjson

from services.payout.domain.money import InvalidAmount, whole_vnd

from ._callbacks import authenticate_callback
from ._http import CounterpartyHttp, parse_datetime
from .base import (
    CallbackRejected,
    NameInquiryResult,
    PaymentBatch,
    PaymentOutcome,
    PaymentStatus,
    PermanentBankError,
    StatementEntry,
    SubmitResult,
    UnknownOutcome,
)

EVENT_STATUSES = {
    "transfer.settled": "SETTLED",
    "transfer.failed": "FAILED",
    "transfer.returned": "RETURNED",
}
BANK_STATUSES = frozenset({"PENDING", "SETTLED", "FAILED", "RETURNED"})


def check_batch_for(counterparty: str, batch: PaymentBatch) -> None:
    """A batch for a bank names that bank and gives every account number."""
    if batch.counterparty != counterparty:
        raise ValueError(f"batch for {batch.counterparty} sent to channel {counterparty}")
    for item in batch.items:
        if not item.account_number:
            raise ValueError("a bank payment needs an account number")
        if type(item.amount) is not int:
            raise TypeError("amounts are whole VND (int)")


async def bank_name_inquiry(
    http: CounterpartyHttp, bin_: str, account_number: str
) -> NameInquiryResult:
    response = await http.send(
        "POST", f"/banks/{bin_}/name-inquiry", json_body={"account_number": account_number}
    )
    if response.status_code == 200:
        body = http.json(response)
        return NameInquiryResult("FOUND", body.get("account_name"))
    if response.status_code == 404:
        code = http.error_code(response)
        if code == "ACCOUNT_NOT_FOUND":
            return NameInquiryResult("NOT_FOUND", None)
        if code == "BANK_NOT_SUPPORTED":
            return NameInquiryResult("BANK_NOT_SUPPORTED", None)
    raise http.refuse(response)


async def json_payment_status(
    http: CounterpartyHttp, path: str, end_to_end_id: str
) -> PaymentStatus:
    response = await http.send("GET", path)
    if response.status_code == 404 and http.error_code(response) == "NOT_FOUND":
        return PaymentStatus(end_to_end_id, "UNKNOWN_TO_BANK", None, None, None, None)
    if response.status_code != 200:
        raise http.refuse(response)
    body = http.json(response)
    status = body.get("status")
    if status not in BANK_STATUSES:
        raise PermanentBankError("UNEXPECTED_STATUS", f"{http.counterparty}: unexpected status")
    return PaymentStatus(
        end_to_end_id=body.get("end_to_end_id", end_to_end_id),
        status=status,
        reason_code=optional_text(body, "reason_code"),
        amount=whole_vnd_or_none(body.get("amount")),
        bank_reference=optional_text(body, "bank_reference"),
        settled_at=parse_datetime(body.get("settled_at")),
    )


MAX_VND = 2**63 - 1


def whole_vnd_or_none(value: Any) -> int | None:
    """An amount in a status answer: whole VND as a JSON integer, else none (a status without
    our amount never settles a payment)."""
    if type(value) is not int or not -MAX_VND <= value <= MAX_VND:
        return None
    return value


def optional_text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def submit_answer(
    http: CounterpartyHttp, response: httpx.Response
) -> tuple[list[str], list[tuple[str, str]]]:
    """The accepted ids and (id, reason code) refusals of an answer to a submission; an answer
    of another shape leaves what was taken unknown."""
    if response.status_code not in (200, 202):
        raise http.refuse_money(response)
    answer = http.answer(response)
    accepted = answer.get("accepted", [])
    rejected = answer.get("rejected", [])
    if not isinstance(rejected, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("end_to_end_id"), str)
        and isinstance(item.get("reason_code"), str)
        for item in rejected
    ):
        raise UnknownOutcome(f"{http.counterparty}: unreadable refusals in the answer")
    refusals = [(item["end_to_end_id"], item["reason_code"]) for item in rejected]
    if isinstance(accepted, list) and all(isinstance(e2e, str) for e2e in accepted):
        return accepted, refusals
    if isinstance(accepted, int) and not isinstance(accepted, bool):
        return [], refusals  # a count (ISO file banks): the caller derives the ids
    raise UnknownOutcome(f"{http.counterparty}: unreadable acceptances in the answer")


def statement_amount(value: Any) -> int:
    """A statement line's amount, exactly in whole VND: anything else refuses the statement."""
    try:
        return whole_vnd(value)
    except InvalidAmount as exc:
        raise PermanentBankError("INVALID_STATEMENT_AMOUNT", str(exc)) from None


async def json_statement(
    http: CounterpartyHttp, path: str, reference_field: str = "bank_reference"
) -> list[StatementEntry]:
    """A statement pulled as JSON; the counterparty's own reference is in `reference_field`."""
    response = await http.send("GET", path)
    if response.status_code != 200:
        raise http.refuse(response)
    body = http.json(response)
    return [
        StatementEntry(
            end_to_end_id=entry["end_to_end_id"],
            amount=statement_amount(entry["amount"]),
            bank_reference=entry.get(reference_field),
            value_date=date.fromisoformat(entry["value_date"]),
            status=entry["status"],
        )
        for entry in body.get("entries", [])
    ]


def typed_json_events(
    raw_body: bytes, statuses: Mapping[str, str]
) -> tuple[str, list[tuple[dict[str, Any], str]]]:
    """A JSON delivery's id and its events, each with the status its type stands for."""
    delivery_id, events = load_json_callback(raw_body)
    typed = []
    for event in events:
        kind = event.get("type")
        status = statuses.get(kind) if isinstance(kind, str) else None
        if status is None:
            raise CallbackRejected("malformed_body", "unknown event type")
        typed.append((event, status))
    return delivery_id, typed


def load_json_callback(raw_body: bytes) -> tuple[str, list[dict[str, Any]]]:
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError:
        raise CallbackRejected("malformed_body", "callback body is not JSON") from None
    if not isinstance(body, dict):
        raise CallbackRejected("malformed_body", "callback body is not an object")
    delivery_id = body.get("delivery_id")
    events = body.get("events")
    if not isinstance(delivery_id, str) or not delivery_id or not isinstance(events, list):
        raise CallbackRejected("malformed_body", "callback needs delivery_id and events")
    if not all(isinstance(event, dict) for event in events):
        raise CallbackRejected("malformed_body", "events must be objects")
    return delivery_id, events


def required_int(event: Mapping[str, Any], key: str) -> int:
    value = event.get(key)
    if type(value) is not int:
        raise CallbackRejected("malformed_body", f"{key} must be an integer")
    return value


def required_str(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise CallbackRejected("malformed_body", f"{key} is missing")
    return value


def required_time(event: Mapping[str, Any], key: str) -> datetime:
    try:
        value = parse_datetime(required_str(event, key))
    except ValueError:
        value = None
    if value is None:
        raise CallbackRejected("malformed_body", f"{key} is not a timestamp")
    return value


class NapasChannel:
    """A bank's real-time JSON API: name inquiry, batch transfers, status, statements, and
    signed outcome callbacks."""

    style = "napas"

    def __init__(
        self,
        bin_: str,
        http: CounterpartyHttp,
        secret: str,
        tolerance_seconds: int = 300,
    ) -> None:
        self.counterparty = bin_
        self._http = http
        self._secret = secret
        self._tolerance = tolerance_seconds

    async def name_inquiry(self, account_number: str) -> NameInquiryResult:
        return await bank_name_inquiry(self._http, self.counterparty, account_number)

    async def submit_batch(self, batch: PaymentBatch) -> SubmitResult:
        check_batch_for(self.counterparty, batch)
        body = {
            "batch_id": batch.batch_id,
            "control_count": batch.control_count,
            "control_sum": batch.control_sum,
            "execution_date": batch.execution_date.isoformat(),
            "transfers": [
                {
                    "end_to_end_id": item.end_to_end_id,
                    "account_number": item.account_number,
                    "account_name": item.account_name,
                    "amount": item.amount,
                    "currency": "VND",
                    "remittance_info": item.remittance_info,
                }
                for item in batch.items
            ],
        }
        response = await self._http.send(
            "POST",
            f"/banks/{self.counterparty}/transfers",
            json_body=body,
            headers={"Idempotency-Key": batch.batch_id},
            moves_money=True,
        )
        accepted, rejected = submit_answer(self._http, response)
        return SubmitResult(accepted=tuple(accepted), rejected=tuple(rejected))

    async def payment_status(self, end_to_end_id: str) -> PaymentStatus:
        return await json_payment_status(
            self._http, f"/banks/{self.counterparty}/transfers/{end_to_end_id}", end_to_end_id
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
            outcomes.append(
                PaymentOutcome(
                    event_id=required_str(event, "event_id"),
                    end_to_end_id=required_str(event, "end_to_end_id"),
                    status=status,  # type: ignore[arg-type]
                    amount=required_int(event, "amount"),
                    reason_code=event.get("reason_code"),
                    bank_reference=event.get("bank_reference"),
                    occurred_at=required_time(event, "occurred_at"),
                )
            )
        return delivery_id, outcomes

    async def statement(self, day: date) -> list[StatementEntry]:
        return await json_statement(
            self._http, f"/banks/{self.counterparty}/statements/{day.isoformat()}"
        )
