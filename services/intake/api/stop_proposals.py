"""Stop proposals: what identity revalidation found (a holder recorded as deceased by the
population registry) and proposes to the paying agency. The agency confirms one by stopping the
entitlement (`POST /v1/entitlements/{id}/stop`, which closes it as CONFIRMED)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.intake.api.common import (
    decode_time_cursor,
    dumps,
    encode_cursor,
    iso,
    json_response,
    scopes,
)
from services.intake.domain.errors import FieldError, Forbidden, Invalid
from services.intake.domain.revalidation import PROPOSAL_STATES
from services.intake.service_layer import revalidation
from shared.auth import Principal
from shared.events.contracts import Agency
from shared.web import problem_responses

router = APIRouter(tags=["beneficiaries"])
ERRORS = problem_responses(401, 403, 422)


def proposal_view(row: dict[str, Any], pii: bool) -> dict[str, Any]:
    return {
        "id": row["id"],
        "entitlement_id": row["entitlement_id"],
        "beneficiary_id": row["beneficiary_id"],
        "agency": row["agency"],
        "reason": row["reason"],
        # a date of the person's life: shown to callers with pii:read only
        "date_of_death": iso(row["date_of_death"]) if pii else None,
        "period": row["period"],
        "state": row["state"],
        "created_at": iso(row["created_at"]),
        "resolved_at": iso(row["resolved_at"]),
    }


@router.get(
    "/v1/stop-proposals",
    responses=ERRORS,
    summary="Proposed entitlement stops (a holder the population registry records as deceased)",
)
async def list_stop_proposals(
    request: Request,
    principal: Principal = Depends(scopes("beneficiaries:read")),
    state: Annotated[str | None, Query(description=" | ".join(PROPOSAL_STATES))] = None,
    agency: Agency | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Response:
    if state is not None and state not in PROPOSAL_STATES:
        raise Invalid([FieldError("/state", f"must be one of {', '.join(PROPOSAL_STATES)}")])
    after = decode_time_cursor(cursor)
    # An agency sees its own proposals only.
    if principal.agency is not None:
        if agency is not None and agency != principal.agency:
            raise Forbidden(f"this caller reads the proposals of {principal.agency} only")
        agency = principal.agency  # type: ignore[assignment]
    async with request.app.state.runtime.engine.connect() as conn:
        rows = await revalidation.stop_proposals(conn, agency, state, after, limit + 1)
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1]["created_at"].isoformat(), page[-1]["id"])
        if len(rows) > limit
        else None
    )
    pii = principal.can("pii:read")
    return json_response(
        dumps({"items": [proposal_view(r, pii) for r in page], "next_cursor": next_cursor})
    )
