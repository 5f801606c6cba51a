"""Bulk uploads: the beneficiary roll (`/v1/roll/uploads`) and payment-method updates
(`/v1/payment-methods/uploads`), as JSON (`{"rows": [...]}`), CSV (`text/csv` body) or a
`multipart/form-data` file (`file`: CSV or XLSX)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message

from services.intake.adapters import repository
from services.intake.adapters.spreadsheets import (
    Limits,
    Row,
    TooLarge,
    UnreadableTable,
    is_xlsx,
    read_csv,
    read_json_rows,
    read_xlsx,
    write_csv,
)
from services.intake.api import upload_runner
from services.intake.api.common import (
    acting_agency,
    dumps,
    json_response,
    name_view,
    scopes,
    si_number_view,
)
from services.intake.domain.errors import FieldError, Invalid, NotFound
from services.intake.service_layer import ownership
from services.intake.service_layer import uploads as service
from shared.auth import Principal
from shared.web import ProblemError, problem_responses

router = APIRouter(tags=["uploads"])
ERRORS = problem_responses(401, 403, 404, 413, 415, 422)
CSV_ERRORS = {
    200: {
        "description": "the refused rows",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    **ERRORS,
}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOAD_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"rows": {"type": "array", "items": {"type": "object"}}},
                }
            },
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
REQUIRED = {
    service.ROLL: [
        "national_id",
        "full_name",
        "date_of_birth",
        "commune_code",
        "commune_list_date",
        "scheme",
        "decision_number",
        "amount_per_installment",
        "start_period",
    ],
    service.PAYMENT_METHODS: ["national_id", "payment_method"],
}
KNOWN = {
    service.ROLL: service.ROLL_COLUMNS,
    service.PAYMENT_METHODS: service.PAYMENT_METHOD_COLUMNS,
}


def _too_large(detail: str) -> ProblemError:
    return ProblemError(
        413, "Content Too Large", detail, errors=[{"pointer": "/file", "detail": detail}]
    )


def _limited_body(request: Request, max_bytes: int) -> Request:
    """The request with its body refused (413) as soon as more than `max_bytes` arrive: a
    declared Content-Length past the limit before anything is read, and the bytes that really
    arrive are counted (a chunked body declares no length, and a declared one may understate)."""
    refusal = f"an upload holds at most {max_bytes} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(refusal)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise _too_large(refusal)
        return message

    return Request(request.scope, receive)


def _read_table(fmt: str, content: bytes, limits: Limits) -> tuple[list[str], list[Row]]:
    """Blocking: runs in a worker thread, bounded by `limits`."""
    if fmt == "XLSX":
        return read_xlsx(content, limits)
    if fmt == "CSV":
        return read_csv(content, limits)
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise Invalid([FieldError("", "the body is not JSON")]) from None
    if not isinstance(document, dict) or "rows" not in document:
        raise Invalid([FieldError("/rows", "is required: a list of row objects")])
    return read_json_rows(document["rows"], limits)


async def read_upload(request: Request, kind: str) -> service.Upload:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    settings = request.app.state.runtime.settings
    limits = Limits(
        settings.upload_max_rows, settings.upload_max_unpacked_bytes, settings.upload_parse_seconds
    )
    filename = None
    if content_type == "multipart/form-data":
        form = await _limited_body(request, settings.upload_max_bytes).form(max_files=1)
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise Invalid(
                    [FieldError("/file", "send the spreadsheet in a form field named `file`")]
                )
            content = await file.read()
            filename = file.filename
        finally:
            await form.close()
        fmt = "XLSX" if is_xlsx(content) or (filename or "").lower().endswith(".xlsx") else "CSV"
    elif content_type in ("text/csv", "application/csv", XLSX_TYPE, "application/json"):
        content = await _limited_body(request, settings.upload_max_bytes).body()
        fmt = {XLSX_TYPE: "XLSX", "application/json": "JSON"}.get(content_type, "CSV")
    else:
        raise ProblemError(
            415,
            "Unsupported Media Type",
            "send application/json, text/csv, an XLSX body or a multipart/form-data file",
        )
    try:
        columns, rows = await run_in_threadpool(_read_table, fmt, content, limits)
    except TooLarge as exc:
        raise _too_large(str(exc)) from None
    json_rows = fmt == "JSON"
    unknown = [c for c in columns if c not in KNOWN[kind]]
    missing = [c for c in REQUIRED[kind] if c not in columns] if not json_rows else []
    if unknown or missing:
        raise Invalid(
            [FieldError(f"/columns/{c}", "is not a column of this upload") for c in unknown]
            + [FieldError(f"/columns/{c}", "is a required column") for c in missing],
            f"the columns must be among: {', '.join(KNOWN[kind])}",
        )
    return service.Upload(kind, fmt, filename, content, columns, rows, json_rows)


def report_document(report: service.UploadReport, base: str) -> dict[str, Any]:
    entity = "entitlement_id" if report.kind == service.ROLL else "method_id"
    return {
        "upload_id": report.upload_id,
        "kind": report.kind,
        "format": report.format,
        "total_rows": report.total_rows,
        "accepted": report.count(service.REGISTERED, service.UPDATED),
        "unchanged": report.count(service.UNCHANGED),
        "rejected": report.count(service.REJECTED),
        "rows": [
            {
                "row": r.row,
                "outcome": r.outcome,
                "beneficiary_id": r.beneficiary_id,
                entity: r.entity_id,
            }
            for r in report.results
            if r.outcome != service.REJECTED
        ],
        "rejections": [
            {"row": r.row, "errors": [{"pointer": e.pointer, "detail": e.detail} for e in r.errors]}
            for r in report.results
            if r.outcome == service.REJECTED
        ],
        "rejections_csv": f"{base}/{report.upload_id}/rejections.csv",
    }


async def _upload(request: Request, principal: Principal, kind: str, base: str) -> Response:
    try:
        upload = await read_upload(request, kind)
    except UnreadableTable as exc:
        raise Invalid([FieldError("/file", str(exc))], "the upload cannot be read") from None
    runtime = request.app.state.runtime
    report = await upload_runner.run_upload(
        runtime.engine, runtime.outbox, principal.client_id, upload, acting_agency(principal)
    )
    return json_response(
        dumps(report_document(report, base)), 201, {"Location": f"{base}/{report.upload_id}"}
    )


async def _stored_report(
    request: Request, principal: Principal, upload_id: str, kind: str, base: str
) -> Response:
    async with request.app.state.runtime.engine.connect() as conn:
        head = await repository.upload(conn, upload_id, kind)
        if head is None:
            raise NotFound("no such upload")
        ownership.require(principal, await ownership.upload_owner(conn, head), "upload")
        rows = await repository.upload_rows_of(conn, upload_id)
    results = [
        service.RowResult(
            r.row_number,
            r.outcome,
            r.beneficiary_id,
            r.entity_id,
            [FieldError(e["pointer"], e["detail"]) for e in (r.errors or [])],
        )
        for r in rows
    ]
    report = service.UploadReport(head.id, head.kind, head.format, head.total_rows, results)
    document = report_document(report, base)
    document.update(
        filename=head.filename, uploaded_by=head.client_id, created_at=head.created_at.isoformat()
    )
    return json_response(dumps(document))


async def _rejections_csv(
    request: Request, principal: Principal, upload_id: str, kind: str
) -> Response:
    async with request.app.state.runtime.engine.connect() as conn:
        head = await repository.upload(conn, upload_id, kind)
        if head is None:
            raise NotFound("no such upload")
        ownership.require(principal, await ownership.upload_owner(conn, head), "upload")
        rows = await repository.upload_rows_of(conn, upload_id, service.REJECTED)
    pii = principal.can("pii:read")
    columns = ["row", *head.columns, "fields", "reasons"]
    lines = []
    for r in rows:
        cells = _masked_people(service.masked_cells(r.raw or {}, pii), pii)
        errors = r.errors or []
        lines.append(
            {
                **cells,
                "row": r.row_number,
                "fields": "; ".join(e["pointer"] for e in errors),
                "reasons": "; ".join(e["detail"] for e in errors),
            }
        )
    return Response(
        write_csv(columns, lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejections-{upload_id}.csv"'},
    )


def _masked_people(cells: dict[str, Any], pii: bool) -> dict[str, Any]:
    """Names, dates of birth and SI numbers of a refused row, masked without `pii:read`."""
    if pii:
        return cells
    out = dict(cells)
    for column in ("full_name", "rep_full_name"):
        if out.get(column):
            out[column] = name_view(str(out[column]), pii)
    if out.get("si_number"):
        out["si_number"] = si_number_view(str(out["si_number"]), pii)
    if out.get("date_of_birth"):
        out["date_of_birth"] = str(out["date_of_birth"])[:4] + "-**-**"
    return out


ROLL_BASE = "/v1/roll/uploads"
METHODS_BASE = "/v1/payment-methods/uploads"


@router.post(
    ROLL_BASE,
    status_code=201,
    responses=ERRORS,
    openapi_extra=UPLOAD_BODY,
    tags=["roll"],
    summary="Register existing monthly beneficiaries (JSON, CSV or XLSX), row by row",
)
async def upload_roll(
    request: Request, principal: Principal = Depends(scopes("roll:write"))
) -> Response:
    """Columns: national_id, full_name, date_of_birth, si_number (SI schemes), commune_code,
    commune_list_date, scheme, decision_number, amount_per_installment (whole VND), start_period
    (YYYY-MM), and optionally the payment method: payment_method, bank_bin, account_number,
    cash_reason, rep_national_id, rep_full_name, rep_relationship, rep_power_of_attorney_ref,
    rep_valid_from, rep_valid_until. Each entry is an open-ended monthly entitlement. Rows are
    numbered as the spreadsheet shows them (header = row 1), or from 1 in a JSON upload."""
    return await _upload(request, principal, service.ROLL, ROLL_BASE)


@router.get(
    ROLL_BASE + "/{upload_id}",
    responses=ERRORS,
    tags=["roll"],
    summary="The report of a roll upload",
)
async def roll_report(
    request: Request, upload_id: str, principal: Principal = Depends(scopes("roll:write"))
) -> Response:
    return await _stored_report(request, principal, upload_id, service.ROLL, ROLL_BASE)


@router.get(
    ROLL_BASE + "/{upload_id}/rejections.csv",
    responses=CSV_ERRORS,
    tags=["roll"],
    response_class=Response,
    summary="The refused rows of a roll upload, with the reasons, as CSV",
)
async def roll_rejections(
    request: Request, upload_id: str, principal: Principal = Depends(scopes("roll:write"))
) -> Response:
    return await _rejections_csv(request, principal, upload_id, service.ROLL)


@router.post(
    METHODS_BASE,
    status_code=201,
    responses=ERRORS,
    openapi_extra=UPLOAD_BODY,
    tags=["payment methods"],
    summary="Bulk payment-method updates (JSON, CSV or XLSX), row by row",
)
async def upload_methods(
    request: Request, principal: Principal = Depends(scopes("payment-methods:write"))
) -> Response:
    """Columns: national_id, payment_method, bank_bin, account_number, cash_reason, rep_national_id,
    rep_full_name, rep_relationship, rep_power_of_attorney_ref, rep_valid_from, rep_valid_until."""
    return await _upload(request, principal, service.PAYMENT_METHODS, METHODS_BASE)


@router.get(
    METHODS_BASE + "/{upload_id}",
    responses=ERRORS,
    tags=["payment methods"],
    summary="The report of a payment-method upload",
)
async def methods_report(
    request: Request,
    upload_id: str,
    principal: Principal = Depends(scopes("payment-methods:write")),
) -> Response:
    return await _stored_report(
        request, principal, upload_id, service.PAYMENT_METHODS, METHODS_BASE
    )


@router.get(
    METHODS_BASE + "/{upload_id}/rejections.csv",
    responses=CSV_ERRORS,
    tags=["payment methods"],
    response_class=Response,
    summary="The refused rows of a payment-method upload, as CSV",
)
async def methods_rejections(
    request: Request,
    upload_id: str,
    principal: Principal = Depends(scopes("payment-methods:write")),
) -> Response:
    return await _rejections_csv(request, principal, upload_id, service.PAYMENT_METHODS)
