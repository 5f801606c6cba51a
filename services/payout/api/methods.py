"""The queue of accounts to fix: payment methods whose verification failed or that a bank
flagged (`payout:read`). Account numbers and names are masked unless the caller holds
`pii:read`. A person sees the people of their agency and, bound to communes, of those communes;
the fix itself is intake's `PUT /v1/beneficiaries/{id}/payment-method` (a new account, or cash
with a reason)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from services.payout.adapters.repository import method_queue
from services.payout.api import cursors
from services.payout.api.masking import PII_SCOPE, masked
from services.payout.domain import next_steps
from shared.auth import Principal, require_scopes
from shared.web import problem_responses

router = APIRouter(prefix="/v1", tags=["payout"], responses=problem_responses(401, 403))
Reader = Annotated[Principal, Depends(require_scopes("payout:read"))]
NAMES = ("account_holder_name", "representative_name")


def reach(principal: Principal) -> tuple[str | None, frozenset[str] | None]:
    """The agency and communes a person's lists are limited to (clients: none)."""
    if not principal.is_person:
        return None, None
    return principal.agency, principal.communes or None


@router.get(
    "/payment-methods",
    summary="Accounts to fix: verification failed or flagged by a bank, with cursor pagination",
    responses=problem_responses(400, 422),
)
async def get_methods_to_fix(
    request: Request,
    principal: Reader,
    status: Annotated[str | None, Query(pattern="^(FAILED|FLAGGED)$")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    after = cursors.page_after(cursor, numeric=False)
    agency, communes = reach(principal)
    async with request.app.state.runtime.session_factory() as session:
        rows = await method_queue.methods_to_fix(
            session,
            statuses=(status,) if status else method_queue.QUEUE_STATUSES,
            agency=agency,
            communes=communes,
            after=after,
            limit=limit,
        )
    can_see = principal.can(PII_SCOPE)
    items: list[dict[str, Any]] = [
        {
            **masked(row, can_see, names=NAMES),
            **next_steps.described(next_steps.for_method(row["status"])),
        }
        for row in rows
    ]
    return JSONResponse(
        jsonable_encoder(
            {
                "items": items,
                "next_cursor": cursors.encode_cursor(rows[-1]["beneficiary_id"])
                if len(rows) == limit
                else None,
            }
        )
    )
