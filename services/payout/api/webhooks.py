"""Signed callbacks from banks (JSON and ISO 20022 camt.054) and the post office.

A callback is trusted only if it is signed (HMAC-SHA256 over the timestamp and the raw body)
with the secret of the counterparty the URL names, within five minutes; otherwise it is refused
with 401 and changes nothing. Event ids already seen change nothing either (a redelivery is
acknowledged so the sender stops, and reported as replayed). A delivery is applied in one
transaction, whatever its size.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.payout.adapters.banks.base import VNPOST, CallbackRejected, PaymentOutcome
from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.domain.model import Outcome
from services.payout.service_layer.outcomes import record_callback
from services.payout.workers import outcome_policy
from shared.clock import utcnow
from shared.uow import UnitOfWork, unit_of_work
from shared.web import ProblemError, problem_responses
from shared.webhook_signing import COUNTERPARTY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

# A delivery holds at most a few thousand events; a bigger body is refused (413) before it is read.
MAX_CALLBACK_BYTES = 8 * 1024 * 1024
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], max_body_size=MAX_CALLBACK_BYTES)
MAX_ID = 100

# What the OpenAPI document says of a callback: its signature headers, its body, its answers.
_SIGNATURE_PARAMETERS = [
    {
        "name": COUNTERPARTY_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "the sender: a bank's BIN, or VNPOST",
    },
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "unix seconds when the body was signed",
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "v1=<hex HMAC-SHA256 of '<timestamp>.' + body with the counterparty's secret>",
    },
]
_JSON_EVENT = {
    "type": "object",
    "required": ["event_id", "type", "end_to_end_id", "amount", "occurred_at"],
    "properties": {
        "event_id": {"type": "string", "maxLength": MAX_ID},
        "type": {"type": "string"},
        "end_to_end_id": {"type": "string"},
        "amount": {"type": "integer"},
        "occurred_at": {"type": "string", "format": "date-time"},
    },
}
_JSON_BODY = {
    "type": "object",
    "required": ["delivery_id", "events"],
    "properties": {
        "delivery_id": {"type": "string", "maxLength": MAX_ID},
        "events": {"type": "array", "items": _JSON_EVENT},
    },
}
_ANSWER = {
    "description": "the delivery was taken (replayed event ids change nothing)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": [
                    "delivery_id",
                    "received",
                    "replayed",
                    "applied",
                    "ignored",
                    "flagged",
                ],
                "properties": {
                    "delivery_id": {"type": "string"},
                    **{
                        k: {"type": "integer", "minimum": 0}
                        for k in ("received", "replayed", "applied", "ignored", "flagged")
                    },
                },
            }
        }
    },
}
_RESPONSES = {200: _ANSWER, **problem_responses(400, 401, 404, 413)}


def _callback_openapi(media_type: str, schema: dict) -> dict:
    return {
        "parameters": _SIGNATURE_PARAMETERS,
        "requestBody": {"required": True, "content": {media_type: {"schema": schema}}},
    }


@router.post(
    "/banks/{bank_bin}",
    summary="Outcome callbacks of a NAPAS-style bank (JSON)",
    responses=_RESPONSES,
    openapi_extra=_callback_openapi("application/json", _JSON_BODY),
)
async def bank_callback(bank_bin: str, request: Request) -> JSONResponse:
    return await _receive(request, "napas", bank_bin)


@router.post(
    "/iso/{bank_bin}",
    summary="Outcome callbacks of an ISO 20022 bank (camt.054)",
    responses=_RESPONSES,
    openapi_extra=_callback_openapi(
        "application/xml", {"type": "string", "description": "camt.054"}
    ),
)
async def iso_callback(bank_bin: str, request: Request) -> JSONResponse:
    return await _receive(request, "iso20022", bank_bin)


@router.post(
    "/vnpost",
    summary="Cash handover and return confirmations of the post office",
    responses=_RESPONSES,
    openapi_extra=_callback_openapi("application/json", _JSON_BODY),
)
async def vnpost_callback(request: Request) -> JSONResponse:
    return await _receive(request, "vnpost", VNPOST)


async def _receive(request: Request, style: str, counterparty: str) -> JSONResponse:
    registry: BankChannelRegistry = request.app.state.channels
    channel = None
    if registry.knows(counterparty):
        try:
            known_style = registry.style_of(counterparty)
            channel = registry.channel(counterparty) if known_style == style else None
        except (ValueError, LookupError):
            channel = None
    if channel is None:
        raise ProblemError(
            404,
            "Not Found",
            "no callback endpoint for this counterparty",
            type_="https://benefits.example.vn/problems/unknown-counterparty",
        )
    raw = await request.body()
    now = utcnow()
    try:
        delivery_id, parsed = channel.parse_callback(request.headers, raw, now)
    except CallbackRejected as exc:
        if exc.reason == "malformed_body":
            raise ProblemError(
                400,
                "Bad Request",
                "the callback body cannot be read",
                type_="https://benefits.example.vn/problems/malformed-callback",
            ) from None
        raise ProblemError(
            401,
            "Unauthorized",
            "the callback signature is not valid",
            type_="https://benefits.example.vn/problems/callback-signature",
            reason=exc.reason,
        ) from None
    if len(delivery_id) > MAX_ID or any(len(o.event_id) > MAX_ID for o in parsed):
        raise ProblemError(
            400,
            "Bad Request",
            "delivery or event id too long",
            type_="https://benefits.example.vn/problems/malformed-callback",
        )
    unreadable = _unreadable(delivery_id, parsed)
    if unreadable is not None:
        raise ProblemError(
            400,
            "Bad Request",
            f"the callback cannot be applied: {unreadable}",
            type_="https://benefits.example.vn/problems/malformed-callback",
        )
    outcomes = [
        Outcome(
            end_to_end_id=o.end_to_end_id,
            status=o.status,
            amount=o.amount,
            reason_code=o.reason_code,
            bank_reference=o.bank_reference,
            occurred_at=o.occurred_at,
            paid_on=o.paid_on,
            staff_id=o.staff_id,
            event_id=o.event_id,
        )
        for o in parsed
    ]
    runtime = request.app.state.runtime
    policy = outcome_policy(request.app.state.settings)
    async with unit_of_work(
        runtime.session_factory, runtime.outbox, actor=counterparty, now=now, kind=UnitOfWork
    ) as uow:
        applied = await record_callback(uow, counterparty, delivery_id, outcomes, policy)
    return JSONResponse({"delivery_id": delivery_id, **applied.as_dict()})


# What the tables can hold: a value beyond it is a malformed callback (400), never a failed write.
_TEXT_LIMITS = {"reason_code": 40, "bank_reference": 64, "staff_id": 64, "end_to_end_id": 64}
_BIGINT = 2**63
# Reason codes are ISO 20022 codes (AC04, MD07 …) or names (NOT_FOUND): anything else is not one.
_REASON_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _unreadable(delivery_id: str, outcomes: list[PaymentOutcome]) -> str | None:
    if "\x00" in delivery_id:
        return "delivery_id holds a NUL character"
    for outcome in outcomes:
        if "\x00" in outcome.event_id:
            return "event_id holds a NUL character"
        if not -_BIGINT <= outcome.amount < _BIGINT:
            return "amount is out of range"
        for name, limit in _TEXT_LIMITS.items():
            value = getattr(outcome, name)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > limit or "\x00" in value:
                return f"{name} must be text of at most {limit} characters"
        if outcome.reason_code is not None and not _REASON_CODE.match(outcome.reason_code):
            return "reason_code is not a reason code"
    return None
