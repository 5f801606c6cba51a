"""Signed callbacks from banks (JSON and ISO 20022 camt.054) and the post office.

A callback is trusted only if it is signed (HMAC-SHA256 over the timestamp and the raw body)
with the secret of the counterparty the URL names, within five minutes; otherwise it is refused
with 401 and changes nothing. Event ids already seen change nothing either (a redelivery is
acknowledged so the sender stops, and reported as replayed). A delivery is applied in one
transaction, whatever its size.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.payout.adapters.banks.base import VNPOST, CallbackRejected
from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.domain.model import Outcome
from services.payout.service_layer.common import utcnow
from services.payout.service_layer.outcomes import record_callback
from services.payout.workers import outcome_policy
from shared.web import ProblemError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
MAX_ID = 100


@router.post("/banks/{bank_bin}", summary="Outcome callbacks of a NAPAS-style bank (JSON)")
async def bank_callback(bank_bin: str, request: Request) -> JSONResponse:
    return await _receive(request, "napas", bank_bin)


@router.post("/iso/{bank_bin}", summary="Outcome callbacks of an ISO 20022 bank (camt.054)")
async def iso_callback(bank_bin: str, request: Request) -> JSONResponse:
    return await _receive(request, "iso20022", bank_bin)


@router.post("/vnpost", summary="Cash handover and return confirmations of the post office")
async def vnpost_callback(request: Request) -> JSONResponse:
    return await _receive(request, "vnpost", VNPOST)


async def _receive(request: Request, style: str, counterparty: str) -> JSONResponse:
    registry: BankChannelRegistry = request.app.state.channels
    try:
        known_style = registry.style_of(counterparty)
        channel = registry.channel(counterparty) if known_style == style else None
    except (ValueError, LookupError):
        channel = None
    if channel is None:
        raise ProblemError(404, "Not Found", "no callback endpoint for this counterparty",
                           type_="https://benefits.example.vn/problems/unknown-counterparty")
    raw = await request.body()
    now = utcnow()
    try:
        delivery_id, parsed = channel.parse_callback(request.headers, raw, now)
    except CallbackRejected as exc:
        if exc.reason == "malformed_body":
            raise ProblemError(400, "Bad Request", "the callback body cannot be read",
                               type_="https://benefits.example.vn/problems/malformed-callback") from None
        raise ProblemError(401, "Unauthorized", "the callback signature is not valid",
                           type_="https://benefits.example.vn/problems/callback-signature",
                           reason=exc.reason) from None
    if len(delivery_id) > MAX_ID or any(len(o.event_id) > MAX_ID for o in parsed):
        raise ProblemError(400, "Bad Request", "delivery or event id too long",
                           type_="https://benefits.example.vn/problems/malformed-callback")
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
    async with runtime.session_factory() as session, session.begin():
        applied = await record_callback(session, runtime.outbox, counterparty, delivery_id, outcomes, now, policy)
    return JSONResponse({"delivery_id": delivery_id, **applied.as_dict()})
