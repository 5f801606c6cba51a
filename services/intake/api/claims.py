"""Claims from the portal, decisions from the agencies, stops of entitlements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from services.intake.adapters import repository
from services.intake.api.common import (
    acting_agency,
    claim_view,
    decode_time_cursor,
    dumps,
    encode_cursor,
    entitlement_view,
    json_response,
    replay_response,
    scopes,
    transact,
)
from services.intake.api.schemas import ApprovalIn, ClaimIn, DecisionIn, StopIn
from services.intake.domain.claims import CLAIM_STATUSES, Approval, Rejection
from services.intake.domain.errors import FieldError, Forbidden, Invalid, NotFound
from services.intake.domain.schedules import Schedule
from services.intake.service_layer import claims as handlers
from services.intake.service_layer import ownership
from services.intake.service_layer.common import Replay, request_hash
from shared.auth import Principal
from shared.authority import REGISTRY_SCOPE
from shared.clock import utcnow
from shared.events.contracts import Agency, Scheme
from shared.web import problem_responses

router = APIRouter(tags=["claims"])
ERRORS = problem_responses(401, 403, 404, 409, 422)


@router.post(
    "/v1/claims",
    status_code=201,
    responses=ERRORS,
    summary="File a claim (idempotent on portal_dossier_id)",
)
async def file_claim(
    request: Request, body: ClaimIn, principal: Principal = Depends(scopes("claims:write"))
) -> Response:
    """The same dossier id with the same body replays the first answer (`Idempotent-Replayed: true`);
    with a different body it is a 409 (modified request)."""
    applicant = body.applicant
    command = handlers.FileClaim(
        portal_dossier_id=body.portal_dossier_id,
        scheme=body.scheme,
        national_id=applicant.national_id,
        full_name=applicant.full_name,
        date_of_birth=applicant.date_of_birth,
        si_number=applicant.si_number,
        commune_code=body.address.commune_code,
        commune_list_date=body.address.list_date,
        payment=body.payment.spec(),
        request_hash=request_hash(body.model_dump(mode="json")),
    )
    batcher = getattr(request.app.state, "filing_batcher", None)
    try:
        if batcher is not None:
            filing = handlers.prepare_filing(command, principal.client_id, utcnow())
            answer = await batcher.submit(filing)
        else:
            answer = await transact(
                request, principal, lambda uow: handlers.file_claim(uow, command)
            )
    except Replay as replay:
        return replay_response(replay)
    return json_response(answer, 201)


@router.get("/v1/claims/{claim_id}", responses=ERRORS, summary="A claim and its status")
async def get_claim(
    request: Request, claim_id: str, principal: Principal = Depends(scopes("claims:read"))
) -> Response:
    async with request.app.state.runtime.engine.connect() as conn:
        row = await repository.claim_with_national_id(conn, claim_id)
    if row is None:
        raise NotFound("no such claim")
    ownership.require(principal, ownership.claim_owner(row), "claim")
    return json_response(
        dumps(claim_view(row._mapping, row.national_id, principal.can("pii:read")))
    )


@router.get("/v1/claims", responses=ERRORS, summary="Claims, filtered, oldest first, with a cursor")
async def list_claims(
    request: Request,
    principal: Principal = Depends(scopes("claims:read")),
    status: Annotated[str | None, Query(description=" | ".join(CLAIM_STATUSES))] = None,
    scheme: Scheme | None = None,
    agency: Agency | None = None,
    commune_code: str | None = None,
    portal_dossier_id: str | None = None,
    beneficiary_id: str | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Response:
    if status is not None and status not in CLAIM_STATUSES:
        raise Invalid([FieldError("/status", f"must be one of {', '.join(CLAIM_STATUSES)}")])
    after = decode_time_cursor(cursor)
    # Only the claims the caller reaches: an agency's schemes, or (the portal) the ones it filed.
    filed_by = None
    if principal.agency is not None:
        if agency is not None and agency != principal.agency:
            raise Forbidden(f"this client reads the claims of {principal.agency} only")
        agency = principal.agency  # type: ignore[assignment]
    elif not principal.can(REGISTRY_SCOPE):
        filed_by = principal.client_id
    async with request.app.state.runtime.engine.connect() as conn:
        rows = await repository.list_claims(
            conn,
            limit=limit,
            after=after,
            status=status,
            scheme=scheme,
            agency=agency,
            commune_code=commune_code,
            portal_dossier_id=portal_dossier_id,
            beneficiary_id=beneficiary_id,
            received_from=received_from,
            received_to=received_to,
            client_id=filed_by,
        )
    pii = principal.can("pii:read")
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1].received_at.isoformat(), page[-1].id) if len(rows) > limit else None
    )
    return json_response(
        dumps(
            {
                "items": [claim_view(r._mapping, r.national_id, pii) for r in page],
                "next_cursor": next_cursor,
            }
        )
    )


@router.post(
    "/v1/claims/{claim_id}/decision", responses=ERRORS, summary="Approve or reject a claim, once"
)
async def decide(
    request: Request,
    claim_id: str,
    body: Annotated[DecisionIn, Body()],
    principal: Principal = Depends(scopes("decisions:write")),
) -> Response:
    """Approve (decision number, amount per installment in whole VND, schedule) or reject (reason).
    Unemployment approvals must follow the rule (60% of the average salary, the regional cap,
    3 to 12 months). The same decision again replays; a different one is a 409."""
    digest = request_hash(body.model_dump(mode="json"))
    if isinstance(body, ApprovalIn):
        s = body.schedule
        command = handlers.DecideClaim(
            claim_id,
            "APPROVED",
            body.agency,
            digest,
            approval=Approval(
                agency=body.agency,
                decision_number=body.decision_number,
                amount_per_installment=body.amount_per_installment,
                schedule=Schedule(s.kind, s.start_period, s.installments),
                average_salary=body.average_salary,
                contribution_months=body.contribution_months,
                region=body.region,
                contract_ended_on=body.contract_ended_on,
                salary_regime=body.salary_regime,
            ),
        )
    else:
        command = handlers.DecideClaim(
            claim_id,
            "REJECTED",
            body.agency,
            digest,
            rejection=Rejection(
                agency=body.agency,
                reason_code=body.reason_code,
                reason_text=body.reason_text,
                decision_number=body.decision_number,
            ),
        )
    ownership.require_decider(principal)
    agency = acting_agency(principal)
    try:
        answer = await transact(
            request, principal, lambda uow: handlers.decide_claim(uow, command, agency)
        )
    except Replay as replay:
        return replay_response(replay)
    return json_response(answer)


@router.get(
    "/v1/entitlements/{entitlement_id}",
    tags=["entitlements"],
    responses=ERRORS,
    summary="An entitlement",
)
async def get_entitlement(
    request: Request,
    entitlement_id: str,
    principal: Principal = Depends(scopes("beneficiaries:read")),
) -> Response:
    async with request.app.state.runtime.engine.connect() as conn:
        row = await repository.entitlement(conn, entitlement_id)
    if row is None:
        raise NotFound("no such entitlement")
    ownership.require(principal, ownership.entitlement_owner(row), "entitlement")
    return json_response(dumps(entitlement_view(row._mapping)))


@router.post(
    "/v1/entitlements/{entitlement_id}/stop",
    tags=["entitlements"],
    responses=ERRORS,
    summary="Stop an entitlement from a period on (death, return to work, end of eligibility)",
)
async def stop(
    request: Request,
    entitlement_id: str,
    body: StopIn,
    principal: Principal = Depends(scopes("decisions:write")),
) -> Response:
    ownership.require_decider(principal)
    agency = acting_agency(principal)
    row, changed = await transact(
        request,
        principal,
        lambda uow: handlers.stop_entitlement(
            uow, entitlement_id, body.reason, body.effective_period, agency
        ),
    )
    headers = None if changed else {"Idempotent-Replayed": "true"}
    return json_response(dumps(entitlement_view(row)), 200, headers)
