"""What the routes share: JSON answers and refusals, reading a body, the app's sandbox, the
request faults injected around the work, and what every bank answers whichever channel it
takes payments on (a transfer's status, the day's statement)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from ..simulator import Sandbox
from ..state import Intake, Statement

Body = TypeVar("Body", bound=BaseModel)


def reply(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def refuse(status_code: int, code: str, **extra: Any) -> Response:
    return reply({"code": code, **extra}, status_code)


def rejected_items(intake: Intake) -> list[dict[str, str]]:
    return [{"end_to_end_id": e2e, "reason_code": code} for e2e, code in intake.rejected]


def parse_body(model: type[Body], raw: bytes) -> Body | Response:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        return refuse(422, "INVALID_REQUEST", errors=errors[:10])


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def current_sandbox(request: Request) -> Sandbox:
    # async: FastAPI would run a plain function in a worker thread for every request.
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(current_sandbox)]

# The work of a request, done once the injected faults before it let it through.
Work = Callable[[], Response]


async def guarded(sandbox: Sandbox, work: Work) -> Response:
    """Latency, then an injected 503 (nothing done), else the work, then an injected hold."""
    await sandbox.latency()
    if sandbox.unavailable():
        return refuse(503, "SERVICE_UNAVAILABLE")
    response = work()
    await sandbox.maybe_hold()
    return response


async def moves_money(sandbox: Sandbox, key: tuple[str, ...] | None, work: Work) -> Response:
    """`guarded` for requests that move money, keyed by their idempotency key: a resend may
    meet an injected 409, a taken request an injected ambiguous answer."""
    await sandbox.latency()
    if sandbox.unavailable():
        return refuse(503, "SERVICE_UNAVAILABLE")
    if sandbox.conflicting_resend(key):
        return refuse(409, "DUPLICATE_REQUEST")
    response = work()
    if 200 <= response.status_code < 300:
        if key is not None:
            sandbox.state.take_key(key)
        response = await ambiguous(sandbox, response)
    await sandbox.maybe_hold()
    return response


async def ambiguous(sandbox: Sandbox, response: Response) -> Response:
    """Injected ambiguous answers to a request that was taken: a gateway error, an
    unreadable 2xx body, or the answer late."""
    state = sandbox.state
    faults = state.faults
    if state.request_fault(faults.error_after_accept_rate):
        status = faults.error_after_accept_status
        return refuse(status, "BAD_GATEWAY" if status == 502 else "GATEWAY_TIMEOUT")
    if state.request_fault(faults.unreadable_answer_rate):
        return Response(
            response.body[: max(1, len(response.body) // 2)],
            status_code=response.status_code,
            media_type="application/json",
        )
    if state.request_fault(faults.slow_answer_rate):
        await asyncio.sleep(faults.slow_answer_seconds)
    return response


def idempotency_key(request: Request, *scope: str) -> tuple[str, ...] | None:
    """The key a money-moving request is taken under, within `scope`, when it carries one."""
    key = request.headers.get("idempotency-key")
    return (*scope, key) if key else None


# -- what every bank answers ------------------------------------------------------------------


def unknown_bank(sandbox: Sandbox, bin_: str) -> Response | None:
    if not sandbox.state.is_bank(bin_):
        return refuse(404, "BANK_NOT_SUPPORTED")
    return None


async def transfer_status(sandbox: Sandbox, bin_: str, end_to_end_id: str) -> Response:
    if (refused := unknown_bank(sandbox, bin_)) is not None:
        return refused
    await sandbox.latency()
    state = sandbox.state
    transfer = state.transfer_for(bin_, end_to_end_id)
    if transfer is None or transfer.channel == "vnpost":
        return refuse(404, "NOT_FOUND")
    return reply(state.bank_status(transfer))


async def statement(sandbox: Sandbox, bin_: str, day_text: str) -> Response:
    if (refused := unknown_bank(sandbox, bin_)) is not None:
        return refused
    day = parse_day(day_text)
    if day is None:
        return refuse(422, "INVALID_DATE")
    await sandbox.latency()
    return streamed(sandbox.state.bank_statement(bin_, day))


def streamed(statement: Statement) -> Response:
    """A statement as JSON, byte for byte what `reply` writes, sent a page at a time."""
    return StreamingResponse(_statement_body(statement), media_type="application/json")


async def _statement_body(statement: Statement) -> AsyncIterator[bytes]:
    yield orjson.dumps(statement.head)[:-1] + b',"entries":['
    total = 0
    first = True
    for entries, page_total in statement.pages:
        if entries:
            yield (b"" if first else b",") + orjson.dumps(entries)[1:-1]
            first = False
        total += page_total
    yield b"]," + orjson.dumps(statement.total_key) + b":" + orjson.dumps(total) + b"}"
