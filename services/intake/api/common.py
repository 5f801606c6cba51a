"""What the intake routers share: the transaction boundary, error mapping, masking presenters."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.intake.adapters.spreadsheets import UnreadableTable
from services.intake.domain import payment_methods as pm
from services.intake.domain.errors import DomainError, Invalid
from services.intake.domain.identity import mask_account, mask_national_id
from services.intake.service_layer.common import IntakeUnitOfWork, Replay
from services.intake.service_layer.payment_methods import spec_of_row
from shared.auth import Principal, authenticate, check_scopes, verifier_of
from shared.uow import unit_of_work
from shared.vn_text import mask_name
from shared.web import problem_response

T = TypeVar("T")
log = logging.getLogger(__name__)
PROBLEMS = "https://benefits.example.vn/problems/"


async def _principal(request: Request) -> Principal:
    """The bearer token's principal (`shared.auth`, whose verifier keeps recently verified
    tokens: the portal sends the same token with thousands of filings). Intake's own tokens are
    checked on the event loop; an external issuer's keys may have to be fetched, off it."""
    verifier = verifier_of(request)
    if verifier.local:
        return authenticate(request)
    return await asyncio.to_thread(authenticate, request)


def scopes(*required: str) -> Callable[[Request], Awaitable[Principal]]:
    """A bearer token holding every one of `required` (as `shared.auth.require_scopes`), checked on
    the event loop without FastAPI's thread-pool hop for plain functions."""

    async def dependency(request: Request) -> Principal:
        principal = await _principal(request)
        check_scopes(principal, required)
        request.state.principal = principal
        return principal

    return dependency


def acting_agency(principal: Principal) -> str | None:
    return principal.agency


async def transact(
    request: Request, principal: Principal, work: Callable[[IntakeUnitOfWork], Awaitable[T]]
) -> T:
    """The request's one unit of work: committed if `work` returns, rolled back if it raises."""
    runtime = request.app.state.runtime
    async with unit_of_work(
        runtime.engine, runtime.outbox, principal.client_id, kind=IntakeUnitOfWork
    ) as uow:
        return await work(uow)


def json_response(
    body: bytes, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def replay_response(replay: Replay, headers: dict[str, str] | None = None) -> Response:
    return json_response(
        replay.body, replay.status_code, {"Idempotent-Replayed": "true", **(headers or {})}
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        extensions: dict[str, Any] = dict(exc.extensions)
        if isinstance(exc, Invalid):
            extensions["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in exc.errors]
        return problem_response(
            exc.status, exc.title, exc.detail, PROBLEMS + exc.type_slug, **extensions
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same unique fact; nothing of the loser was applied.
        return problem_response(
            409,
            "Conflict",
            "a concurrent change conflicts with this request; retry it",
            PROBLEMS + "concurrent-change",
        )

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        # The driver's message and SQLAlchemy's may quote parameters (personal data): log the class only.
        log.error(
            "database error",
            extra={
                "fields": {"error": type(exc.orig).__name__ if exc.orig else type(exc).__name__}
            },
        )
        return problem_response(
            500, "Internal Server Error", "a database error occurred; see the correlation id"
        )

    @app.exception_handler(UnreadableTable)
    async def _unreadable(_: Request, exc: UnreadableTable) -> JSONResponse:
        return problem_response(
            422,
            "Unprocessable Content",
            str(exc),
            PROBLEMS + "unreadable-upload",
            errors=[{"pointer": "/file", "detail": str(exc)}],
        )


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([str(v) for v in values])).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != parts:
        raise Invalid([_cursor_error()], "the cursor is not one this API gave")
    return values


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) a list ordered by time resumes after; None for the first page."""
    if not cursor:
        return None
    at, last_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), last_id
    except ValueError:
        raise Invalid([_cursor_error()], "the cursor is not one this API gave") from None


def _cursor_error():
    from services.intake.domain.errors import FieldError

    return FieldError("/cursor", "is not a cursor this API gave")


# --- presenters: masked unless the caller holds pii:read -------------------------------------


def national_id_view(value: str | None, pii: bool) -> str | None:
    return value if pii else mask_national_id(value)


def account_view(value: str | None, pii: bool) -> str | None:
    return value if pii else mask_account(value)


def name_view(value: str | None, pii: bool) -> str | None:
    return value if pii else mask_name(value)


def date_of_birth_view(value: date | None, pii: bool) -> str | None:
    """Masked: the year only ('1958-**-**')."""
    if value is None or pii:
        return iso(value)
    return f"{value.year:04d}-**-**"


def si_number_view(value: str | None, pii: bool) -> str | None:
    return value if pii else mask_national_id(value)


def iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def payment_document_view(doc: Mapping[str, Any], pii: bool) -> dict[str, Any]:
    rep = doc.get("representative")
    return {
        "method": doc["method"],
        "bank_bin": doc.get("bank_bin"),
        "account_number": account_view(doc.get("account_number"), pii),
        "cash_reason": doc.get("cash_reason"),
        "representative": None
        if not rep
        else {
            **rep,
            "national_id": national_id_view(rep["national_id"], pii),
            "full_name": name_view(rep.get("full_name"), pii),
        },
    }


def method_view(row: Mapping[str, Any], pii: bool, today: date) -> dict[str, Any]:
    spec = spec_of_row(row)
    rep = spec.representative
    status = pm.effective_status(spec.kind, row["status"], rep, today)
    return {
        "method_id": row["id"],
        "method": spec.kind,
        "status": status,
        "stored_status": row["status"],
        "status_reason": row["status_reason"],
        "usable_for_payment": status == pm.VERIFIED,
        "bank_bin": spec.bank_bin,
        "account_number": account_view(spec.account_number, pii),
        "account_holder_name": name_view(row["account_holder_name"], pii),
        "cash_reason": spec.cash_reason,
        "representative": None
        if rep is None
        else {
            "national_id": national_id_view(rep.national_id, pii),
            "full_name": name_view(rep.full_name, pii),
            "relationship": rep.relationship,
            "power_of_attorney_ref": rep.power_of_attorney_ref,
            "valid_from": iso(rep.valid_from),
            "valid_until": iso(rep.valid_until),
            "authorisation": pm.authorisation_state(rep, today),
        },
        "channel": row["channel"],
        "changed_by": row["client_id"],
        "created_at": iso(row["created_at"]),
        "status_changed_at": iso(row["status_changed_at"]),
        "current": row["is_current"],
        "superseded_at": iso(row["superseded_at"]),
    }


def entitlement_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "entitlement_id": row["id"],
        "beneficiary_id": row["beneficiary_id"],
        "claim_id": row["claim_id"],
        "scheme": row["scheme"],
        "agency": row["agency"],
        "decision_number": row["decision_number"],
        "amount_per_installment": row["amount_per_installment"],
        "schedule": {
            "kind": row["schedule_kind"],
            "start_period": row["start_period"],
            "installments": row["installments"],
        },
        "status": row["status"],
        "stop": None
        if row["stop_reason"] is None
        else {
            "reason": row["stop_reason"],
            "effective_period": row["stop_effective_period"],
            "stopped_at": iso(row["stopped_at"]),
        },
        "commune_code": row["commune_code"],
        "commune_list_date": iso(row["commune_list_date"]),
        "source": row["source"],
        "granted_at": iso(row["granted_at"]),
    }


def beneficiary_view(row: Mapping[str, Any], pii: bool) -> dict[str, Any]:
    return {
        "beneficiary_id": row["id"],
        "national_id": national_id_view(row["national_id"], pii),
        "full_name": name_view(row["full_name"], pii),
        "date_of_birth": date_of_birth_view(row["date_of_birth"], pii),
        "si_number": si_number_view(row["si_number"], pii),
        "commune_code": row["commune_code"],
        "commune_list_date": iso(row["commune_list_date"]),
        "registered_via": row["registered_via"],
        "registered_at": iso(row["registered_at"]),
    }


def claim_view(row: Mapping[str, Any], national_id: str, pii: bool) -> dict[str, Any]:
    return {
        "claim_id": row["id"],
        "portal_dossier_id": row["portal_dossier_id"],
        "status": row["status"],
        "scheme": row["scheme"],
        "agency": row["agency"],
        "beneficiary_id": row["beneficiary_id"],
        "applicant": {
            "national_id": national_id_view(national_id, pii),
            "full_name": name_view(row["full_name"], pii),
            "date_of_birth": date_of_birth_view(row["date_of_birth"], pii),
            "si_number": si_number_view(row["si_number"], pii),
        },
        "address": {
            "commune_code": row["commune_code"],
            "list_date": iso(row["commune_list_date"]),
        },
        "payment": payment_document_view(row["payment"], pii),
        "received_at": iso(row["received_at"]),
        "decided_at": iso(row["decided_at"]),
        "decision": row["decision"],
        "entitlement_id": row["entitlement_id"],
    }


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)
