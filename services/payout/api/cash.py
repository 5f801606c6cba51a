"""The post office's cash lists per commune (`payout:read`), and the handover or return of each
item recorded by its staff (`cash:handover`, only in the communes they serve: 403 otherwise).
A record goes through the same outcome machinery as the post office's signed confirmation,
and the same record twice changes nothing. Names are masked unless the caller holds
`pii:read`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.payout.adapters.repository import cash as statements
from services.payout.api import cursors
from services.payout.api.masking import PII_SCOPE, masked
from services.payout.domain import model, next_steps
from services.payout.service_layer import cash
from services.payout.workers import outcome_policy
from shared.auth import Principal, require_scopes
from shared.clock import utcnow
from shared.events.contracts import PERIOD_PATTERN
from shared.periods import vietnam_date
from shared.uow import UnitOfWork, unit_of_work
from shared.web import ProblemError, problem_responses

router = APIRouter(
    prefix="/v1/cash-lists",
    tags=["payout"],
    responses=problem_responses(401, 403),
    max_body_size=16 * 1024,
)
Reader = Annotated[Principal, Depends(require_scopes("payout:read"))]
Handover = Annotated[Principal, Depends(require_scopes("cash:handover"))]
COMMUNE_PATTERN = "^[0-9]{5}$"
EndToEndId = Annotated[str, Path(max_length=35, pattern="^[A-Za-z0-9-]{1,35}$")]


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paid_on: date = Field(description="the day the cash was handed over (Vietnam's calendar)")
    staff_id: str = Field(min_length=1, max_length=model.STAFF_ID_LENGTH, pattern=r"^[^\x00]+$")


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["NOT_FOUND", "REFUSED", "DECEASED"] = Field(
        description="the post office's return reason"
    )


def _communes(principal: Principal) -> frozenset[str] | None:
    """The communes a person bound to communes acts for; others are not limited."""
    if principal.is_person and principal.communes:
        return principal.communes
    return None


def _view(row: dict[str, Any], can_see: bool) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("current_attempt_no", "attempt_state")}
    out["current"] = row["attempt_no"] == row["current_attempt_no"]
    step = next_steps.for_installment(row["state"], None, row["reason_code"], model.VNPOST)
    out.update(next_steps.described(step))
    return masked(out, can_see, accounts=(), names=("account_name",))


@router.get(
    "",
    summary="Cash lists: the cash items of batches handed to the post office, per commune",
    responses=problem_responses(400, 422),
)
async def get_cash_lists(
    request: Request,
    principal: Reader,
    commune: Annotated[str | None, Query(pattern=COMMUNE_PATTERN)] = None,
    period: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    after = cursors.page_after(cursor, numeric=False)
    async with request.app.state.runtime.session_factory() as session:
        rows = await statements.cash_items(
            session,
            period=period,
            commune=commune,
            communes=_communes(principal),
            after=after,
            limit=limit,
        )
    can_see = principal.can(PII_SCOPE)
    lists: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = f"{row['period']}/{row['commune_code']}"
        entry = lists.setdefault(
            key,
            {
                "period": row["period"],
                "commune_code": row["commune_code"],
                "count": 0,
                "amount": 0,
                "items": [],
            },
        )
        entry["count"] += 1
        entry["amount"] += int(row["amount"])
        entry["items"].append(_view(row, can_see))
    return JSONResponse(
        jsonable_encoder(
            {
                "lists": list(lists.values()),
                "next_cursor": cursors.encode_cursor(rows[-1]["end_to_end_id"])
                if len(rows) == limit
                else None,
            }
        )
    )


@router.post(
    "/items/{end_to_end_id}/handover",
    summary="Record that the cash was handed over, on a date by a staff member (idempotent)",
    responses=problem_responses(404, 409, 413, 422),
)
async def post_handover(
    end_to_end_id: EndToEndId, body: HandoverIn, request: Request, principal: Handover
) -> JSONResponse:
    if body.paid_on > vietnam_date(utcnow()):
        raise ProblemError(
            422,
            "Unprocessable Content",
            "paid_on is a day in the future",
            type_="https://benefits.example.vn/problems/paid-on-in-future",
        )
    return await _record(
        request, principal, end_to_end_id, "handover", paid_on=body.paid_on, staff_id=body.staff_id
    )


@router.post(
    "/items/{end_to_end_id}/return",
    summary="Record that the cash came back to the post office, with its reason (idempotent)",
    responses=problem_responses(404, 409, 413, 422),
)
async def post_return(
    end_to_end_id: EndToEndId, body: ReturnIn, request: Request, principal: Handover
) -> JSONResponse:
    return await _record(request, principal, end_to_end_id, "return", reason=body.reason)


async def _record(
    request: Request,
    principal: Principal,
    end_to_end_id: str,
    kind: cash.Kind,
    **details: Any,
) -> JSONResponse:
    runtime = request.app.state.runtime
    policy = outcome_policy(request.app.state.settings)
    try:
        async with unit_of_work(
            runtime.session_factory, runtime.outbox, principal.client_id, kind=UnitOfWork
        ) as uow:
            recorded = await cash.record_cash(
                uow,
                end_to_end_id,
                kind,
                recorded_by=principal.client_id,
                communes=_communes(principal),
                policy=policy,
                **details,
            )
            if recorded.conflict:
                # Raised inside the unit of work: nothing of this record is kept.
                raise ProblemError(
                    409,
                    "Conflict",
                    f"the item is already {recorded.state}: a final state never goes back",
                    type_="https://benefits.example.vn/problems/cash-item-final",
                    state=recorded.state,
                )
    except cash.CashItemNotFound:
        raise ProblemError(
            404, "Not Found", "no cash item of a batch handed to the post office has this id"
        ) from None
    except cash.NotYourCommune:
        raise ProblemError(
            403,
            "Forbidden",
            "this item is paid in a commune you do not serve",
            type_="https://benefits.example.vn/problems/not-your-commune",
        ) from None
    view = _view(recorded.item, principal.can(PII_SCOPE))
    return JSONResponse(
        jsonable_encoder({**view, "recorded": kind, "replayed": recorded.replayed}),
        status_code=200,
    )
