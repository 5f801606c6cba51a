"""The payout API: cycles and their approvals, funds envelopes, the payment calendar,
installments, batches, the ledger, reconciliations and payment methods. `cycles:prepare`
prepares a cycle, `cycles:approve` (a checker, a person) releases it, `envelopes:write` and
`calendar:write` load the plans, `payout:operate` runs reconciliations, `payout:read` reads;
account numbers and names are masked unless the caller also holds `pii:read`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from services.payout.adapters.banks.base import (
    PermanentBankError,
    TransientBankError,
    UnknownOutcome,
)
from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.adapters.repository import approvals as approval_statements
from services.payout.adapters.repository import reads
from services.payout.api import cursors
from services.payout.api.masking import PII_SCOPE, masked
from services.payout.api.schemas import (
    COUNTERPARTY_PATTERN,
    Approve,
    SetCalendar,
    SetEnvelopes,
    StartCycle,
    StartReconciliation,
)
from services.payout.domain import model, next_steps
from services.payout.domain.approval import ApprovalRefused
from services.payout.domain.reconciliation import LINE_KINDS, BankEntry
from services.payout.service_layer import approvals
from services.payout.service_layer.cycles import start_cycle
from services.payout.service_layer.reconciliation import reconcile
from shared.auth import Principal, require_scopes
from shared.clock import as_utc, utcnow
from shared.events.contracts import PERIOD_PATTERN
from shared.uow import UnitOfWork, unit_of_work
from shared.web import ProblemError, problem_responses

# Request bodies here are a few fields: anything past 64 KiB is refused (413) before it is read.
router = APIRouter(
    prefix="/v1", tags=["payout"], responses=problem_responses(401, 403), max_body_size=64 * 1024
)
Operator = Annotated[Principal, Depends(require_scopes("payout:operate"))]
Preparer = Annotated[Principal, Depends(require_scopes("cycles:prepare"))]
Approver = Annotated[Principal, Depends(require_scopes("cycles:approve"))]
EnvelopeWriter = Annotated[Principal, Depends(require_scopes("envelopes:write"))]
CalendarWriter = Annotated[Principal, Depends(require_scopes("calendar:write"))]
Reader = Annotated[Principal, Depends(require_scopes("payout:read"))]
PeriodQuery = Annotated[str | None, Query(pattern=PERIOD_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=1000)]
T = TypeVar("T")
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # a BIGINT key


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status)


def _not_found(what: str) -> ProblemError:
    return ProblemError(404, "Not Found", f"no such {what}")


# -- cycles -------------------------------------------------------------------------------------


@router.post(
    "/cycles",
    status_code=201,
    summary="Prepare the cycle of a period (idempotent): nothing is sent before its approval",
    responses={
        200: {"description": "the cycle existed already", "content": {"application/json": {}}},
        **problem_responses(413, 422),
    },
)
async def post_cycle(body: StartCycle, request: Request, principal: Preparer) -> JSONResponse:
    runtime = request.app.state.runtime
    settings = request.app.state.settings

    async def transact(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with unit_of_work(
            runtime.session_factory, runtime.outbox, principal.client_id, kind=UnitOfWork
        ) as uow:
            return await work(uow)

    started = await start_cycle(
        transact, body.period, principal.client_id, settings.batch_size, settings.cycle_chunk_size
    )
    async with runtime.session_factory() as session:
        cycle = await reads.cycle_row(session, body.period)
        assert cycle is not None
        progress = await reads.cycle_progress(session, cycle, utcnow())
        view = await approvals.overview(session, cycle)
    return _json(
        {
            **progress,
            **view,
            "created": started.created,
            "new_installments": started.new_installments,
            "new_batches": started.batches,
        },
        201 if started.created else 200,
    )


@router.get(
    "/status", summary="What payout knows: entitlements, and account verifications by state"
)
async def get_status(request: Request, _: Reader) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        return _json(await reads.world_status(session))


@router.get(
    "/cycles",
    summary="Cycles, the newest period first, with their state and each waiting part's state "
    "(`awaiting=true`: only those PREPARED, waiting for a checker's decision)",
    responses=problem_responses(400, 422),
)
async def get_cycles(
    request: Request,
    _: Reader,
    awaiting: Annotated[
        bool, Query(description="only cycles PREPARED: a part waits for a checker's decision")
    ] = False,
    cursor: str | None = None,
    limit: Limit = 100,
) -> JSONResponse:
    before = cursors.page_after(cursor, numeric=False)
    async with request.app.state.runtime.session_factory() as session:
        rows, resume_after = await approvals.cycles_queue(
            session, awaiting_only=awaiting, before=before, limit=limit
        )
    return _json(
        {
            "items": rows,
            "next_cursor": cursors.encode_cursor(resume_after) if resume_after else None,
        }
    )


@router.get(
    "/cycles/{period}",
    summary="A cycle: progress, and per agency its totals, differences from the previous "
    "period, holds, what awaits approval (with its digest), the approvals and envelope use",
    responses=problem_responses(400, 404),
)
async def get_cycle(period: str, request: Request, _: Reader) -> JSONResponse:
    _check_period(period)
    async with request.app.state.runtime.session_factory() as session:
        cycle = await reads.cycle_row(session, period)
        if cycle is None:
            raise _not_found("cycle")
        progress = await reads.cycle_progress(session, cycle, utcnow())
        return _json({**progress, **await approvals.overview(session, cycle)})


@router.post(
    "/cycles/{period}/approvals",
    status_code=201,
    summary="Approve (or reject) what awaits approval for an agency, by the digest shown",
    responses=problem_responses(400, 404, 409, 413, 422),
)
async def post_approval(
    period: str, body: Approve, request: Request, principal: Approver
) -> JSONResponse:
    _check_period(period)
    runtime = request.app.state.runtime
    try:
        async with unit_of_work(
            runtime.session_factory, runtime.outbox, principal.client_id, kind=UnitOfWork
        ) as uow:
            decided = await approvals.decide(
                uow,
                principal,
                period,
                agency=body.agency,
                digest=body.digest,
                decision=body.decision,
                reason=body.reason,
            )
    except approvals.CycleNotFound:
        raise _not_found("cycle") from None
    except ApprovalRefused as refused:
        raise ProblemError(
            refused.status,
            refused.title,
            refused.detail,
            type_=refused.type_uri,
            **refused.extensions,
        ) from None
    return _json(
        {
            "id": decided.approval_id,
            "period": decided.period,
            "agency": decided.agency,
            "decision": decided.decision,
            "digest": decided.digest,
            "count": decided.count,
            "amount": decided.amount,
            "batches": decided.batches,
        },
        201,
    )


@router.get(
    "/cycles/{period}/approvals",
    summary="The approvals trail of a period: every decision, oldest first",
    responses=problem_responses(400),
)
async def get_approvals(period: str, request: Request, _: Reader) -> JSONResponse:
    _check_period(period)
    async with request.app.state.runtime.session_factory() as session:
        return _json({"period": period, "items": await approvals.approval_trail(session, period)})


# -- funds envelopes and the payment calendar ---------------------------------------------------


@router.put(
    "/envelopes",
    summary="Load funds envelopes: an agency's budget for a scheme and period",
    responses=problem_responses(413, 422),
)
async def put_envelopes(
    body: SetEnvelopes, request: Request, principal: EnvelopeWriter
) -> JSONResponse:
    runtime = request.app.state.runtime
    rows = [row.model_dump() for row in body.envelopes]
    async with unit_of_work(
        runtime.session_factory, runtime.outbox, principal.client_id, kind=UnitOfWork
    ) as uow:
        count = await approvals.set_envelopes(uow, rows)
    return _json({"set": count})


@router.get("/envelopes", summary="Funds envelopes (of a period)", responses=problem_responses(422))
async def get_envelopes(request: Request, _: Reader, period: PeriodQuery = None) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        rows = await approval_statements.list_envelopes(session, period)
    return _json({"items": rows})


@router.put(
    "/calendar",
    summary="Plan payment dates: periods paid together on a date, and when they are prepared",
    responses=problem_responses(413, 422),
)
async def put_calendar(
    body: SetCalendar, request: Request, principal: CalendarWriter
) -> JSONResponse:
    runtime = request.app.state.runtime
    async with unit_of_work(
        runtime.session_factory, runtime.outbox, principal.client_id, kind=UnitOfWork
    ) as uow:
        count = await approvals.set_calendar(
            uow, [(e.pay_date, e.periods, e.prepare_on) for e in body.entries]
        )
    return _json({"periods": count})


@router.get("/calendar", summary="The payment calendar, by pay date")
async def get_calendar(request: Request, _: Reader) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        rows = await approval_statements.list_calendar(session)
    entries: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = entries.setdefault(
            (row["pay_date"], row["prepare_on"]),
            {"pay_date": row["pay_date"], "prepare_on": row["prepare_on"], "periods": []},
        )
        entry["periods"].append(row["period"])
    return _json({"entries": list(entries.values())})


def _check_period(period: str) -> None:
    if not re.match(PERIOD_PATTERN, period):
        raise ProblemError(
            400,
            "Bad Request",
            "a period is written YYYY-MM",
            type_="https://benefits.example.vn/problems/bad-period",
        )


# -- installments and batches -------------------------------------------------------------------


def _installment_view(row: dict[str, Any], can_see: bool, now: Any) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("updated_at",)}
    out["end_to_end_id"] = (
        model.end_to_end_id(row["id"], row["attempt_no"]) if row["attempt_no"] else None
    )
    if row["state"] in (model.ON_HOLD, model.SCHEDULED, model.SUBMITTED):
        created = as_utc(row["created_at"])
        out["pending_age_seconds"] = int((now - created).total_seconds())
    out.update(
        next_steps.described(
            next_steps.for_installment(
                row["state"], row["hold_reason"], row["reason_code"], row["counterparty"]
            )
        )
    )
    return masked(out, can_see)


@router.get(
    "/installments",
    summary="Installments, filtered, with cursor pagination",
    responses=problem_responses(400, 422),
)
async def get_installments(
    request: Request,
    principal: Reader,
    period: PeriodQuery = None,
    state: Annotated[
        str | None, Query(pattern="^(" + "|".join(model.INSTALLMENT_STATES) + ")$")
    ] = None,
    counterparty: Annotated[str | None, Query(pattern=COUNTERPARTY_PATTERN)] = None,
    beneficiary_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> JSONResponse:
    after = cursors.page_after(cursor)
    async with request.app.state.runtime.session_factory() as session:
        rows = await reads.list_installments(
            session,
            period=period,
            state=state,
            counterparty=counterparty,
            beneficiary_id=beneficiary_id,
            after=after,
            limit=limit,
        )
    now = utcnow()
    can_see = principal.can(PII_SCOPE)
    return _json(
        {
            "items": [_installment_view(row, can_see, now) for row in rows],
            "next_cursor": cursors.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
        }
    )


@router.get(
    "/installments/{installment_id}",
    summary="One installment with its attempts",
    responses=problem_responses(404, 422),
)
async def get_installment(
    installment_id: RowId, request: Request, principal: Reader
) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        row = await reads.installment_detail(session, installment_id)
    if row is None:
        raise _not_found("installment")
    can_see = principal.can(PII_SCOPE)
    view = _installment_view(
        {k: v for k, v in row.items() if k not in ("attempts", "anomalies")}, can_see, utcnow()
    )
    view["attempts"] = [masked(a, can_see, names=("account_name",)) for a in row["attempts"]]
    view["anomalies"] = [_anomaly_view(a) for a in row["anomalies"]]
    return _json(view)


@router.get(
    "/batches",
    summary="Batches, filtered, with cursor pagination",
    responses=problem_responses(400, 422),
)
async def get_batches(
    request: Request,
    _: Reader,
    period: PeriodQuery = None,
    state: Annotated[str | None, Query(pattern="^(" + "|".join(model.BATCH_STATES) + ")$")] = None,
    counterparty: Annotated[str | None, Query(pattern=COUNTERPARTY_PATTERN)] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> JSONResponse:
    after = cursors.page_after(cursor, numeric=False)
    async with request.app.state.runtime.session_factory() as session:
        rows = await reads.list_batches(
            session, period=period, state=state, counterparty=counterparty, after=after, limit=limit
        )
    return _json(
        {
            "items": rows,
            "next_cursor": cursors.encode_cursor(rows[-1]["batch_id"])
            if len(rows) == limit
            else None,
        }
    )


@router.get(
    "/batches/{batch_id}",
    summary="One batch with its items counted by state",
    responses=problem_responses(404),
)
async def get_batch(batch_id: str, request: Request, _: Reader) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        row = await reads.batch_row(session, batch_id)
    if row is None:
        raise _not_found("batch")
    return _json(row)


# -- anomalies ----------------------------------------------------------------------------------


def _anomaly_view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **next_steps.described(next_steps.for_anomaly(row["kind"]))}


@router.get(
    "/anomalies",
    summary="Payment anomalies (duplicate entitlements, unexpected bank answers), oldest first",
    responses=problem_responses(400, 422),
)
async def get_anomalies(
    request: Request,
    _: Reader,
    kind: Annotated[str | None, Query(pattern="^[A-Z][A-Z_]{0,39}$")] = None,
    period: PeriodQuery = None,
    beneficiary_id: Annotated[str | None, Query(max_length=64)] = None,
    installment_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    counterparty: Annotated[str | None, Query(pattern=COUNTERPARTY_PATTERN)] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> JSONResponse:
    after = cursors.page_after(cursor)
    async with request.app.state.runtime.session_factory() as session:
        rows = await reads.list_anomalies(
            session,
            kind=kind,
            period=period,
            beneficiary_id=beneficiary_id,
            installment_id=installment_id,
            counterparty=counterparty,
            after=after,
            limit=limit,
        )
    return _json(
        {
            "items": [_anomaly_view(row) for row in rows],
            "next_cursor": cursors.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
        }
    )


# -- ledger and reconciliation ------------------------------------------------------------------


@router.get(
    "/ledger",
    summary="Sums settled, returned, failed and open per counterparty for a period",
    responses=problem_responses(422),
)
async def get_ledger(
    request: Request, _: Reader, period: Annotated[str, Query(pattern=PERIOD_PATTERN)]
) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        rows = await reads.ledger(session, period)
    return _json(
        {
            "period": period,
            "counterparties": rows,
            "settled_sum": sum(r["settled_sum"] for r in rows),
            "settled_count": sum(r["settled_count"] for r in rows),
        }
    )


@router.post(
    "/reconciliations",
    status_code=201,
    summary="Fetch a counterparty's statement for a day and match it against the ledger",
    responses=problem_responses(413, 422, 502, 503),
)
async def post_reconciliation(
    body: StartReconciliation, request: Request, principal: Operator
) -> JSONResponse:
    registry: BankChannelRegistry = request.app.state.channels
    try:
        if not registry.knows(body.counterparty):
            raise LookupError(body.counterparty)
        channel = registry.channel(body.counterparty)
    except (ValueError, LookupError):
        raise ProblemError(422, "Unprocessable Content", "unknown counterparty") from None
    try:
        statement = await channel.statement(body.date)
    except (TransientBankError, UnknownOutcome):
        raise ProblemError(
            503,
            "Service Unavailable",
            "the counterparty did not answer; try again",
            type_="https://benefits.example.vn/problems/counterparty-unavailable",
        ) from None
    except PermanentBankError as exc:
        raise ProblemError(
            502,
            "Bad Gateway",
            f"the counterparty refused the statement request ({exc.code})",
            type_="https://benefits.example.vn/problems/counterparty-refused",
        ) from None
    entries = [
        BankEntry(e.end_to_end_id, int(e.amount), e.status, e.bank_reference) for e in statement
    ]
    runtime = request.app.state.runtime
    async with unit_of_work(
        runtime.session_factory, runtime.outbox, principal.client_id, kind=UnitOfWork
    ) as uow:
        run_id, summary = await reconcile(
            uow, body.counterparty, body.date, entries, principal.client_id
        )
    return _json(
        {"id": run_id, "counterparty": body.counterparty, "date": body.date, "summary": summary},
        201,
    )


@router.get(
    "/reconciliations",
    summary="Reconciliation runs, newest first",
    responses=problem_responses(422),
)
async def get_reconciliations(
    request: Request,
    _: Reader,
    counterparty: Annotated[str | None, Query(pattern=COUNTERPARTY_PATTERN)] = None,
    day: Annotated[date | None, Query(alias="date")] = None,
    limit: Limit = 50,
) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        rows = await reads.latest_reconciliations(session, counterparty, day, limit)
    return _json({"items": [_run_view(r) for r in rows]})


def _run_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "counterparty": row["counterparty"],
        "date": row["statement_date"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "summary": row["summary"],
    }


@router.get(
    "/reconciliations/{run_id}",
    summary="One reconciliation with its lines (filter by kind)",
    responses=problem_responses(400, 404, 422),
)
async def get_reconciliation(
    run_id: RowId,
    request: Request,
    _: Reader,
    kind: Annotated[str | None, Query(pattern="^(" + "|".join(LINE_KINDS) + ")$")] = None,
    cursor: str | None = None,
    limit: Limit = 200,
) -> JSONResponse:
    after = cursors.page_after(cursor)
    async with request.app.state.runtime.session_factory() as session:
        run = await reads.reconciliation(session, run_id)
        if run is None:
            raise _not_found("reconciliation")
        lines = await reads.reconciliation_line_rows(session, run_id, kind, after, limit)
    return _json(
        {
            **_run_view(run),
            "lines": [{k: v for k, v in line.items() if k != "run_id"} for line in lines],
            "next_cursor": cursors.encode_cursor(lines[-1]["id"]) if len(lines) == limit else None,
        }
    )


# -- payment methods ----------------------------------------------------------------------------


@router.get(
    "/beneficiaries/{beneficiary_id}/payment-method",
    summary="The current payment method and its verification",
    responses=problem_responses(404),
)
async def get_payment_method(
    beneficiary_id: str, request: Request, principal: Reader
) -> JSONResponse:
    async with request.app.state.runtime.session_factory() as session:
        row = await reads.payment_method(session, beneficiary_id)
    if row is None:
        raise _not_found("payment method")
    can_see = principal.can(PII_SCOPE)
    names = ("account_holder_name", "verified_name", "representative_name", "expected_name")
    view = masked(row, can_see, names=names)
    if row["verification"] is not None:
        view["verification"] = masked(row["verification"], can_see, names=names)
    return _json(view)
