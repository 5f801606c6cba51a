"""Beneficiaries, their entitlements and their payment methods (with history)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.intake.adapters import repository
from services.intake.api.common import (
    beneficiary_view,
    dumps,
    entitlement_view,
    iso,
    json_response,
    method_view,
    scopes,
    transact,
)
from services.intake.api.schemas import LookupIn, PaymentMethodIn
from services.intake.domain import payment_methods as pm
from services.intake.domain.errors import Invalid, NotFound
from services.intake.service_layer import ownership
from services.intake.service_layer.common import IntakeUnitOfWork
from services.intake.service_layer.payment_methods import MethodChange, apply_method_changes
from shared.auth import Principal
from shared.authority import Owner, may_act_on
from shared.clock import utcnow
from shared.periods import period_of, vietnam_date
from shared.web import problem_responses

router = APIRouter(tags=["beneficiaries"])
ERRORS = problem_responses(401, 403, 404, 422)


def _owner(rights: list, now: datetime) -> Owner:
    return ownership.beneficiary_owner((r._mapping for r in rights), period_of(now))


async def _beneficiary_document(
    request: Request,
    principal: Principal,
    beneficiary_id: str,
    not_found: str = "no such beneficiary",
    hide: bool = False,
) -> dict:
    """The person, their entitlements and current method; refused (or, with `hide`, answered as
    not found) when the caller's agency does not pay them."""
    pii = principal.can("pii:read")
    async with request.app.state.runtime.engine.connect() as conn:
        person = await repository.beneficiary(conn, beneficiary_id)
        if person is None:
            raise NotFound(not_found)
        rights = await repository.entitlements_of(conn, beneficiary_id)
        owner = _owner(rights, utcnow())
        if hide and not may_act_on(principal, owner):
            raise NotFound(not_found)
        ownership.require(principal, owner, "beneficiary")
        methods = await repository.methods_of(conn, beneficiary_id)
    today = vietnam_date()
    current = next((m for m in methods if m.is_current), None)
    return {
        **beneficiary_view(person._mapping, pii),
        "entitlements": [entitlement_view(r._mapping) for r in rights],
        "payment_method": None if current is None else method_view(current._mapping, pii, today),
    }


@router.get(
    "/v1/beneficiaries/{beneficiary_id}",
    responses=ERRORS,
    summary="A beneficiary, their entitlements and current payment method",
)
async def get_beneficiary(
    request: Request,
    beneficiary_id: str,
    principal: Principal = Depends(scopes("beneficiaries:read")),
) -> Response:
    return json_response(dumps(await _beneficiary_document(request, principal, beneficiary_id)))


@router.post(
    "/v1/beneficiaries/lookup",
    responses=ERRORS,
    summary="Find a beneficiary by national id (sent in the body, never in a URL)",
)
async def lookup(
    request: Request, body: LookupIn, principal: Principal = Depends(scopes("beneficiaries:read"))
) -> Response:
    unknown = "no beneficiary with this national id"
    async with request.app.state.runtime.engine.connect() as conn:
        person = await repository.beneficiary_by_national_id(conn, body.national_id)
    if person is None:
        raise NotFound(unknown)
    # A person another agency pays is answered as unknown: a lookup must not tell who is registered.
    return json_response(
        dumps(await _beneficiary_document(request, principal, person.id, unknown, hide=True))
    )


@router.get(
    "/v1/beneficiaries/{beneficiary_id}/payment-methods",
    responses=ERRORS,
    summary="Every payment method the beneficiary had, and the history of changes",
)
async def payment_methods(
    request: Request,
    beneficiary_id: str,
    principal: Principal = Depends(scopes("beneficiaries:read")),
) -> Response:
    pii = principal.can("pii:read")
    async with request.app.state.runtime.engine.connect() as conn:
        if await repository.beneficiary(conn, beneficiary_id) is None:
            raise NotFound("no such beneficiary")
        rights = await repository.entitlements_of(conn, beneficiary_id)
        ownership.require(principal, _owner(rights, utcnow()), "beneficiary")
        methods = await repository.methods_of(conn, beneficiary_id)
        history = await repository.method_history_of(conn, beneficiary_id)
    today = vietnam_date()
    return json_response(
        dumps(
            {
                "beneficiary_id": beneficiary_id,
                "methods": [method_view(m._mapping, pii, today) for m in methods],
                "history": [
                    {
                        "method_id": h.method_id,
                        "change": h.change,
                        "status": h.status,
                        "detail": h.detail,
                        "channel": h.channel,
                        "by": h.client_id,
                        "at": iso(h.at),
                    }
                    for h in history
                ],
            }
        )
    )


@router.put(
    "/v1/beneficiaries/{beneficiary_id}/payment-method",
    responses=ERRORS,
    summary="Set the beneficiary's payment method (a bank account is pending until verified)",
)
async def set_payment_method(
    request: Request,
    beneficiary_id: str,
    body: PaymentMethodIn,
    principal: Principal = Depends(scopes("payment-methods:write")),
) -> Response:
    spec = pm.normalise(body.spec())

    async def work(uow: IntakeUnitOfWork) -> tuple[dict, bool]:
        person = await repository.beneficiary(uow, beneficiary_id)
        if person is None:
            raise NotFound("no such beneficiary")
        # Only an agency paying the person may redirect the money: checked before anything is
        # validated or written, so a refused change leaves no method for payout to verify.
        paying = await repository.paying_agencies(uow, [person.id], period_of(uow.now))
        ownership.require(principal, Owner(paying.get(person.id, frozenset())), "beneficiary")
        errors = pm.method_problems(spec, vietnam_date(uow.now), person.national_id)
        if errors:
            raise Invalid(errors)
        [outcome] = await apply_method_changes(
            uow, [MethodChange(person.id, person.full_name, spec, "API")]
        )
        await uow.flush()
        return {
            "beneficiary_id": person.id,
            "method_id": outcome.method_id,
            "status": outcome.status,
            "changed": outcome.changed,
        }, outcome.changed

    answer, changed = await transact(request, principal, work)
    return json_response(dumps(answer), 200, None if changed else {"Idempotent-Replayed": "true"})
