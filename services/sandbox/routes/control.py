"""Test control: health, accounts to seed, faults to inject, the post office's outcomes to
preset, returns to trigger, the ledger of credits, callback counters, the settings, reset."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from shared.clock import utcnow

from ..schemas import AccountList, CashOutcomeList, ReturnIn
from ..state import CASH_OUTCOMES, VNPOST, Faults, Transfer
from .common import SandboxDep, parse_body, refuse, reply

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return reply({"status": "ok"})


@router.post("/admin/accounts")
async def seed_accounts(request: Request, sandbox: SandboxDep) -> Response:
    raw = await request.body()
    body = parse_body(AccountList, b'{"accounts":' + raw + b"}")
    if isinstance(body, Response):
        return body
    state = sandbox.state
    unknown = sorted({a.bin for a in body.accounts if not state.is_bank(a.bin)})
    if unknown:
        return refuse(422, "BANK_NOT_SUPPORTED", bins=unknown)
    count = state.seed_accounts(
        (a.bin, a.account_number, a.holder_name, a.status) for a in body.accounts
    )
    return reply({"seeded": count, "accounts": state.account_count()})


@router.get("/admin/faults")
async def get_faults(sandbox: SandboxDep) -> Response:
    return reply(sandbox.state.faults.model_dump())


@router.put("/admin/faults")
async def put_faults(request: Request, sandbox: SandboxDep) -> Response:
    body = parse_body(Faults, await request.body())
    if isinstance(body, Response):
        return body
    sandbox.state.set_faults(body)
    return reply(sandbox.state.faults.model_dump())


@router.put("/admin/vnpost/outcomes")
async def set_cash_outcomes(request: Request, sandbox: SandboxDep) -> Response:
    # What the post office does with these items; one still pending takes its outcome at once.
    raw = await request.body()
    body = parse_body(CashOutcomeList, b'{"outcomes":' + raw + b"}")
    if isinstance(body, Response):
        return body
    state = sandbox.state
    assert all(row.outcome in CASH_OUTCOMES for row in body.outcomes)
    state.preset_cash_outcomes((row.end_to_end_id, row.outcome) for row in body.outcomes)
    now_pending: list[Transfer] = []
    for row in body.outcomes:
        transfer = state.transfer_for(VNPOST, row.end_to_end_id)
        if transfer is not None and transfer.status == "PENDING" and row.outcome != "PENDING":
            now_pending.append(transfer)
    sandbox.webhooks.publish(state.settle_cash(now_pending, utcnow()))
    return reply({"updated": len(body.outcomes), "confirmed": len(now_pending)})


@router.post("/admin/transfers/{end_to_end_id}/return")
async def return_transfer(end_to_end_id: str, request: Request, sandbox: SandboxDep) -> Response:
    raw = await request.body()
    body = parse_body(ReturnIn, raw or b"{}")
    if isinstance(body, Response):
        return body
    event = sandbox.state.return_transfer(end_to_end_id, body.reason_code, utcnow())
    if event is None:
        return refuse(409, "NOT_RETURNABLE")
    sandbox.publish_return(event)
    return reply(sandbox.state.bank_status(event.transfer))


@router.get("/admin/ledger")
async def ledger(sandbox: SandboxDep) -> Response:
    return reply(sandbox.state.ledger())


@router.get("/admin/ledger/entries")
async def ledger_entries(
    sandbox: SandboxDep,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> Response:
    return reply(sandbox.state.ledger_entries(limit, offset))


@router.get("/admin/webhooks")
async def webhook_stats(sandbox: SandboxDep) -> Response:
    # Idle only when nothing is left to happen either: a pending entry still to be booked,
    # a reversal or a late return still to come.
    scheduled = sandbox.scheduled
    webhooks = sandbox.webhooks
    return reply(
        {**webhooks.stats(), "scheduled": scheduled, "idle": webhooks.idle and scheduled == 0}
    )


@router.get("/admin/config")
async def config(sandbox: SandboxDep) -> Response:
    settings = sandbox.settings
    shown = settings.model_dump(exclude={"webhook_secrets"})
    shown["webhook_secret_counterparties"] = sorted(settings.webhook_secrets)
    return reply(shown)


@router.post("/admin/reset")
async def reset(sandbox: SandboxDep) -> Response:
    sandbox.reset()
    return reply({"status": "reset"})
