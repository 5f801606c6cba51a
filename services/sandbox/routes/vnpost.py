"""The provincial post office: cash lists per commune, an item's status and the day's
statement, under /vnpost."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from shared.clock import utcnow

from ..schemas import CashListIn
from ..simulator import Sandbox
from ..state import VNPOST, ItemIn
from .common import (
    SandboxDep,
    idempotency_key,
    moves_money,
    parse_body,
    parse_day,
    refuse,
    rejected_items,
    reply,
    streamed,
)

router = APIRouter()


@router.post("/vnpost/cash-lists")
async def submit_cash_list(request: Request, sandbox: SandboxDep) -> Response:
    raw = await request.body()
    key = idempotency_key(request, "vnpost")
    return await moves_money(sandbox, key, functools.partial(take_cash_list, sandbox, raw))


def take_cash_list(sandbox: Sandbox, raw: bytes) -> Response:
    """Take a commune's cash list within its control totals; an item of another commune is
    refused. A list is keyed by its id."""
    body = parse_body(CashListIn, raw)
    if isinstance(body, Response):
        return body
    items = body.items
    if body.control_count != len(items) or body.control_sum != sum(i.amount for i in items):
        return refuse(422, "CONTROL_TOTALS_MISMATCH")
    state = sandbox.state
    intake = state.take(
        VNPOST,
        "vnpost",
        ("vnpost", body.list_id),
        (
            ItemIn(
                i.end_to_end_id,
                i.amount,
                commune_code=i.commune_code,
                rejection=None if i.commune_code == body.commune_code else "COMMUNE_MISMATCH",
            )
            for i in items
        ),
        utcnow(),
        list_id=body.list_id,
    )
    sandbox.schedule(state.settle_cash, intake.new)
    return reply(
        {"list_id": body.list_id, "accepted": intake.accepted, "rejected": rejected_items(intake)},
        202,
    )


@router.get("/vnpost/items/{end_to_end_id}")
async def cash_item(end_to_end_id: str, sandbox: SandboxDep) -> Response:
    await sandbox.latency()
    state = sandbox.state
    transfer = state.transfer_for(VNPOST, end_to_end_id)
    if transfer is None:
        return refuse(404, "NOT_FOUND")
    return reply(state.cash_status(transfer))


@router.get("/vnpost/statements/{day}")
async def cash_statement(day: str, sandbox: SandboxDep) -> Response:
    parsed = parse_day(day)
    if parsed is None:
        return refuse(422, "INVALID_DATE")
    await sandbox.latency()
    return streamed(sandbox.state.cash_statement(parsed))
