"""The ISO 20022 file bank: pain.001 files in, a file's pain.002 status, a transfer's status
and the day's statement, under /iso/{bin}. Its outcomes come back as camt.054 and pain.002
callbacks (see webhooks.py)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from shared.clock import utcnow

from ..iso import ControlTotalsMismatch, InvalidFile, Pain001, build_pain002, parse_pain001
from ..simulator import Sandbox
from ..state import Intake, IsoMessage, SandboxState
from .common import (
    SandboxDep,
    idempotency_key,
    moves_money,
    refuse,
    rejected_items,
    reply,
    statement,
    transfer_status,
    unknown_bank,
)

router = APIRouter()


@router.post("/iso/{bin_}/files")
async def submit_file(bin_: str, request: Request, sandbox: SandboxDep) -> Response:
    if (refused := unknown_bank(sandbox, bin_)) is not None:
        return refused
    if not sandbox.state.is_iso_bank(bin_):
        return refuse(404, "CHANNEL_NOT_SUPPORTED", detail="this bank takes JSON transfers")
    raw = await request.body()
    key = idempotency_key(request, "iso", bin_)
    return await moves_money(sandbox, key, functools.partial(take_file, sandbox, bin_, raw))


def take_file(sandbox: Sandbox, bin_: str, raw: bytes) -> Response:
    """Read and take a pain.001: a file that fails validation is refused (and answered with a
    pain.002 when its MsgId can be read), one whose control totals do not add up too."""
    try:
        document = parse_pain001(raw, sandbox.bins_by_bic, bin_)
    except InvalidFile as exc:
        sandbox.refuse_file(bin_, raw, utcnow())
        return refuse(400, "INVALID_FILE", reason_code="FF01", errors=exc.errors)
    except ControlTotalsMismatch:
        return refuse(422, "CONTROL_TOTALS_MISMATCH")
    state = sandbox.state
    intake = state.take(
        bin_,
        "iso",
        ("iso", bin_, document.message_id),
        document.items,
        utcnow(),
        debtor_account=document.debtor_account,
        message_id=document.message_id,
    )
    message = record_file(state, bin_, document, intake)
    sandbox.schedule_file(message, intake.new, intake.refused)
    return reply(
        {
            "message_id": document.message_id,
            "accepted": len(intake.accepted),
            "rejected": rejected_items(intake),
        },
        202,
    )


def record_file(state: SandboxState, bin_: str, document: Pain001, intake: Intake) -> IsoMessage:
    """The file as the bank keeps it (its pain.002 is written from it): recorded the first
    time it is taken; a resend finds it as it was."""
    known = state.file(bin_, document.message_id)
    # A file refused unread may come again, now valid, under the same id.
    if known is not None and (known.group_rejection is None or known.blocks):
        return known
    declared_sum = document.control_sum or sum(i.amount for i in document.items if i.amount > 0)
    message = IsoMessage(
        message_id=document.message_id,
        bin=bin_,
        received_at=utcnow(),
        number_of_transactions=document.number_of_transactions,
        control_sum=int(declared_sum),
        blocks=len(document.payment_infos),
    )
    refusals = dict(intake.rejected)
    state.record_file(
        message,
        (
            (block, info_id, item.end_to_end_id, refusals.get(item.end_to_end_id))
            for block, (info_id, items) in enumerate(document.payment_infos)
            for item in items
        ),
    )
    return message


@router.get("/iso/{bin_}/files/{message_id}/status")
async def file_status(bin_: str, message_id: str, sandbox: SandboxDep) -> Response:
    if (refused := unknown_bank(sandbox, bin_)) is not None:
        return refused
    await sandbox.latency()
    state = sandbox.state
    message = state.file(bin_, message_id)
    if message is None:
        return refuse(404, "NOT_FOUND")
    report_id = f"STS{state.epoch}{message_id}"[:35]
    document = build_pain002(message, state.file_lines(message), report_id, utcnow())
    return Response(document, media_type="application/xml")


@router.get("/iso/{bin_}/transfers/{end_to_end_id}")
async def iso_transfer_status(bin_: str, end_to_end_id: str, sandbox: SandboxDep) -> Response:
    return await transfer_status(sandbox, bin_, end_to_end_id)


@router.get("/iso/{bin_}/statements/{day}")
async def iso_statement(bin_: str, day: str, sandbox: SandboxDep) -> Response:
    return await statement(sandbox, bin_, day)
