"""The NAPAS-style JSON bank: name inquiry (every bank answers it, the file bank too), bulk
transfers, a transfer's status and the day's statement, under /banks/{bin}."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from shared.clock import utcnow

from ..schemas import NameInquiryIn, TransferBatchIn
from ..simulator import Sandbox
from ..state import ItemIn
from .common import (
    SandboxDep,
    guarded,
    idempotency_key,
    moves_money,
    parse_body,
    refuse,
    rejected_items,
    reply,
    statement,
    transfer_status,
    unknown_bank,
)

router = APIRouter()


@router.post("/banks/{bin_}/name-inquiry")
async def name_inquiry(bin_: str, request: Request, sandbox: SandboxDep) -> Response:
    if (refused := unknown_bank(sandbox, bin_)) is not None:
        return refused
    raw = await request.body()
    return await guarded(sandbox, functools.partial(inquire_name, sandbox, bin_, raw))


def inquire_name(sandbox: Sandbox, bin_: str, raw: bytes) -> Response:
    body = parse_body(NameInquiryIn, raw)
    if isinstance(body, Response):
        return body
    account = sandbox.state.account(bin_, body.account_number)
    if account is None or account.status == "CLOSED":
        return refuse(404, "ACCOUNT_NOT_FOUND")
    return reply({"account_number": body.account_number, "account_name": account.holder_name})


@router.post("/banks/{bin_}/transfers")
async def submit_transfers(bin_: str, request: Request, sandbox: SandboxDep) -> Response:
    if (refused := unknown_bank(sandbox, bin_)) is not None:
        return refused
    if sandbox.state.is_iso_bank(bin_):
        return refuse(404, "CHANNEL_NOT_SUPPORTED", detail="this bank takes ISO 20022 files")
    raw = await request.body()
    key = idempotency_key(request, "banks", bin_)
    return await moves_money(
        sandbox, key, functools.partial(take_transfers, sandbox, bin_, raw, key)
    )


def take_transfers(
    sandbox: Sandbox, bin_: str, raw: bytes, key: tuple[str, ...] | None
) -> Response:
    """Take a batch of transfers within its control totals; a batch without an idempotency
    key is keyed by its batch id."""
    body = parse_body(TransferBatchIn, raw)
    if isinstance(body, Response):
        return body
    transfers = body.transfers
    if body.control_count != len(transfers) or body.control_sum != sum(t.amount for t in transfers):
        return refuse(422, "CONTROL_TOTALS_MISMATCH")
    state = sandbox.state
    intake = state.take(
        bin_,
        "napas",
        key or ("banks", bin_, body.batch_id),
        (ItemIn(t.end_to_end_id, t.amount, t.currency, t.account_number, bin_) for t in transfers),
        utcnow(),
    )
    sandbox.schedule(state.settle_bank, intake.new)
    return reply(
        {
            "batch_id": body.batch_id,
            "accepted": intake.accepted,
            "rejected": rejected_items(intake),
        },
        202,
    )


@router.get("/banks/{bin_}/transfers/{end_to_end_id}")
async def bank_transfer_status(bin_: str, end_to_end_id: str, sandbox: SandboxDep) -> Response:
    return await transfer_status(sandbox, bin_, end_to_end_id)


@router.get("/banks/{bin_}/statements/{day}")
async def bank_statement(bin_: str, day: str, sandbox: SandboxDep) -> Response:
    return await statement(sandbox, bin_, day)
