"""Bulk uploads: the beneficiary roll and payment-method updates, as JSON rows, CSV or XLSX.

Every row is checked in memory first; the valid rows are then written in chunks, each chunk one
transaction with bulk inserts. A row is all-or-nothing: its beneficiary, entitlement, method,
history, audit and events are written together or not at all. If a chunk fails (for instance a
concurrent upload registered the same person), it is retried, then applied one row at a time.
A re-upload of the same rows changes nothing: they come back as UNCHANGED."""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.adapters.orm import beneficiaries, entitlements, upload_rows, uploads
from services.intake.adapters.spreadsheets import Row
from services.intake.domain import entitlements as entitlement_rules
from services.intake.domain.errors import FieldError
from services.intake.domain.identity import (
    cccd_problems,
    mask_account,
    mask_national_id,
    normalise_name,
)
from services.intake.domain.payment_methods import MethodSpec
from services.intake.domain.schedules import Schedule, is_period, period_of, vietnam_today
from services.intake.domain.schemes import AGENCY_OF, ROLL_SCHEMES, agency_for
from services.intake.domain.validation import address_problems, applicant_problems
from services.intake.service_layer.claims import held_entitlements
from services.intake.service_layer import ownership
from services.intake.service_layer.common import Context
from services.intake.service_layer.payment_methods import (
    MethodChange,
    apply_method_changes,
    current_methods,
)
from services.intake.service_layer.rows import METHOD_COLUMNS, RowReader
from shared.db import is_sqlite
from shared.events.contracts import BeneficiaryRegistered, EntitlementGranted
from shared.events.contracts import Schedule as ScheduleContract
from shared.outbox import Outbox
from shared.vn_text import same_name

log = logging.getLogger(__name__)

ROLL = "ROLL"
PAYMENT_METHODS = "PAYMENT_METHODS"
ROLL_COLUMNS = [
    "national_id", "full_name", "date_of_birth", "si_number", "commune_code", "commune_list_date", "scheme",
    "decision_number", "amount_per_installment", "start_period", *METHOD_COLUMNS,
]
PAYMENT_METHOD_COLUMNS = ["national_id", *METHOD_COLUMNS]
CHUNK = 500

REGISTERED = "REGISTERED"  # a new entitlement (and the person, if new)
UPDATED = "UPDATED"  # only the payment method changed
UNCHANGED = "UNCHANGED"
REJECTED = "REJECTED"


@dataclass
class RowResult:
    row: int
    outcome: str
    beneficiary_id: str | None = None
    entity_id: str | None = None  # the entitlement (roll) or payment method (payment-method upload)
    errors: list[FieldError] = field(default_factory=list)
    cells: dict[str, str | None] | None = None


@dataclass
class RollEntry:
    row: int
    cells: dict[str, str | None]
    prefix: str
    national_id: str
    full_name: str
    date_of_birth: date
    si_number: str | None
    commune_code: str
    commune_list_date: date
    scheme: str
    agency: str
    decision_number: str
    amount: int
    start_period: str
    method: MethodSpec | None


@dataclass
class MethodEntry:
    row: int
    cells: dict[str, str | None]
    prefix: str
    national_id: str
    method: MethodSpec


@dataclass
class Upload:
    kind: str
    format: str
    filename: str | None
    content: bytes
    columns: list[str]
    rows: list[Row]
    json_rows: bool  # pointers "/rows/<i>/<column>" rather than "/<column>"

    def prefix(self, row_number: int) -> str:
        return f"/rows/{row_number - 1}" if self.json_rows else ""


# --- reading and checking rows ----------------------------------------------------------------


def read_roll_row(cells: dict[str, str | None], row: int, prefix: str, today: date,
                  acting_agency: str | None) -> RollEntry | list[FieldError]:
    r = RowReader(cells, prefix)
    national_id = r.text("national_id") or ""
    full_name = normalise_name(r.text("full_name") or "")
    dob = r.date("date_of_birth")
    si_number = r.text("si_number", required=False)
    commune_code = r.text("commune_code") or ""
    list_date = r.date("commune_list_date")
    scheme = (r.text("scheme") or "").upper()
    decision_number = r.text("decision_number") or ""
    amount = r.amount("amount_per_installment")
    start_period = r.text("start_period") or ""
    if scheme and scheme not in AGENCY_OF:
        r.bad("scheme", f"must be one of {', '.join(AGENCY_OF)}")
    elif scheme and scheme not in ROLL_SCHEMES:
        r.bad("scheme", f"the roll holds monthly schemes only ({', '.join(sorted(ROLL_SCHEMES))})")
    elif scheme and acting_agency is not None and agency_for(scheme) != acting_agency:
        r.bad("scheme", f"{scheme} belongs to {agency_for(scheme)}, not {acting_agency}")
    if start_period and not is_period(start_period):
        r.bad("start_period", "must be a period YYYY-MM")
    reported = {e.pointer for e in r.errors}
    if dob is not None and scheme in AGENCY_OF:
        r.errors += [FieldError(f"{prefix}{e.pointer}", e.detail)
                     for e in applicant_problems(national_id, full_name, dob, si_number, scheme, today)
                     if f"{prefix}{e.pointer}" not in reported]
    elif national_id:
        r.errors += [FieldError(f"{prefix}/national_id", p) for p in cccd_problems(national_id)]
    if commune_code and list_date is not None:
        r.errors += [FieldError(f"{prefix}{e.pointer}", e.detail)
                     for e in address_problems(commune_code, list_date, list_field="commune_list_date")]
    method = r.method(today, national_id, required=False)
    if r.errors:
        return r.errors
    assert dob is not None and list_date is not None and amount is not None
    return RollEntry(row, cells, prefix, national_id, full_name, dob, si_number, commune_code, list_date, scheme,
                     agency_for(scheme), decision_number, amount, start_period, method)


def read_method_row(cells: dict[str, str | None], row: int, prefix: str, today: date) -> MethodEntry | list[FieldError]:
    r = RowReader(cells, prefix)
    national_id = r.text("national_id") or ""
    if national_id:
        r.errors += [FieldError(f"{prefix}/national_id", p) for p in cccd_problems(national_id)]
    method = r.method(today, national_id, required=True)
    if r.errors or method is None:
        return r.errors
    return MethodEntry(row, cells, prefix, national_id, method)


# --- applying a chunk -------------------------------------------------------------------------


def _reject(entry: RollEntry | MethodEntry, column: str, detail: str) -> RowResult:
    return RowResult(entry.row, REJECTED, errors=[FieldError(f"{entry.prefix}/{column}", detail)], cells=entry.cells)


async def _people(ctx: Context, national_ids: Sequence[str]) -> dict[str, Any]:
    rows = await ctx.db.execute(select(beneficiaries).where(beneficiaries.c.national_id.in_(set(national_ids))))
    return {row.national_id: row for row in rows}


async def _entitlements_by_decision(ctx: Context, keys: set[tuple[str, str]]) -> list[Any]:
    if not ctx.postgres:
        return [row for row in await ctx.db.execute(
            select(entitlements).where(entitlements.c.agency.in_({a for a, _ in keys}),
                                       entitlements.c.decision_number.in_({n for _, n in keys}))
        ) if (row.agency, row.decision_number) in keys]
    # PostgreSQL: join the keys as two arrays. (A long IN list of parameters is searched linearly
    # for every row once the prepared statement goes generic.)
    wanted = func.unnest(
        bindparam("agencies", type_=ARRAY(String)), bindparam("numbers", type_=ARRAY(String))
    ).table_valued("agency", "decision_number").render_derived(name="wanted")
    query = select(entitlements).join(wanted, and_(entitlements.c.agency == wanted.c.agency,
                                                   entitlements.c.decision_number == wanted.c.decision_number))
    ordered = sorted(keys)
    return list(await ctx.db.execute(query, {"agencies": [a for a, _ in ordered],
                                             "numbers": [n for _, n in ordered]}))


async def apply_roll_chunk(ctx: Context, entries: list[RollEntry]) -> list[RowResult]:
    people = await _people(ctx, [e.national_id for e in entries])
    keys = {(e.agency, e.decision_number) for e in entries}
    by_decision = {(row.agency, row.decision_number): row for row in await _entitlements_by_decision(ctx, keys)}
    known_ids = [p.id for p in people.values()]
    held = await held_entitlements(ctx, known_ids, lock=True)
    methods = await current_methods(ctx, known_ids)

    results: list[RowResult] = []
    new_people: list[dict[str, Any]] = []
    new_entitlements: list[dict[str, Any]] = []
    changes: list[MethodChange] = []
    result_of_change: dict[str, RowResult] = {}
    for e in entries:
        person = people.get(e.national_id)
        if person is not None:
            if person.date_of_birth != e.date_of_birth:
                results.append(_reject(e, "date_of_birth", "differs from the person registered with this national id"))
                continue
            if not same_name(person.full_name, e.full_name):
                results.append(_reject(e, "full_name", "differs from the person registered with this national id"))
                continue
            beneficiary_id, beneficiary_name = person.id, person.full_name
        else:
            beneficiary_id, beneficiary_name = str(uuid.uuid4()), e.full_name
        existing = by_decision.get((e.agency, e.decision_number))
        if existing is not None:
            same = (existing.beneficiary_id == beneficiary_id and existing.scheme == e.scheme
                    and existing.amount_per_installment == e.amount and existing.start_period == e.start_period)
            if not same:
                results.append(_reject(e, "decision_number",
                                       f"decision {e.decision_number} of {e.agency} is already registered with other details"))
                continue
            entitlement_id = existing.id
            outcome = UNCHANGED
        else:
            schedule = Schedule("OPEN_MONTHLY", e.start_period)
            other = entitlement_rules.overlapping_entitlement(held.get(beneficiary_id, []), e.scheme, schedule)
            if other is not None:
                results.append(_reject(e, "scheme", entitlement_rules.duplicate_detail(other)))
                continue
            entitlement_id = str(uuid.uuid4())
            held.setdefault(beneficiary_id, []).append(entitlement_rules.HeldEntitlement(
                entitlement_id, e.scheme, e.decision_number, entitlement_rules.ACTIVE, schedule))
            outcome = REGISTERED
            if person is None:
                new_people.append({
                    "id": beneficiary_id, "national_id": e.national_id, "full_name": e.full_name,
                    "date_of_birth": e.date_of_birth, "si_number": e.si_number, "commune_code": e.commune_code,
                    "commune_list_date": e.commune_list_date, "registered_via": "ROLL", "registered_at": ctx.now,
                })
                ctx.emit(BeneficiaryRegistered(
                    beneficiary_id=beneficiary_id, full_name=e.full_name, commune_code=e.commune_code,
                    commune_list_date=e.commune_list_date, registered_via="ROLL", registered_at=ctx.now,
                ))
                ctx.audit("beneficiary.registered", "beneficiary", beneficiary_id, {
                    "national_id": mask_national_id(e.national_id), "registered_via": "ROLL",
                    "commune_code": e.commune_code,
                })
            new_entitlements.append({
                "id": entitlement_id, "beneficiary_id": beneficiary_id, "claim_id": None, "scheme": e.scheme,
                "agency": e.agency, "decision_number": e.decision_number, "amount_per_installment": e.amount,
                "schedule_kind": "OPEN_MONTHLY", "start_period": e.start_period, "installments": None,
                "status": entitlement_rules.ACTIVE, "stop_reason": None, "stop_effective_period": None,
                "stopped_at": None, "commune_code": e.commune_code, "commune_list_date": e.commune_list_date,
                "source": "ROLL", "client_id": ctx.actor, "granted_at": ctx.now,
            })
            ctx.emit(EntitlementGranted(
                entitlement_id=entitlement_id, beneficiary_id=beneficiary_id, scheme=e.scheme,  # type: ignore[arg-type]
                agency=e.agency, decision_number=e.decision_number,  # type: ignore[arg-type]
                amount_per_installment=e.amount,
                schedule=ScheduleContract(kind="OPEN_MONTHLY", start_period=e.start_period),
                commune_code=e.commune_code, commune_list_date=e.commune_list_date, granted_at=ctx.now,
            ))
            ctx.audit("entitlement.registered", "entitlement", entitlement_id, {
                "beneficiary_id": beneficiary_id, "scheme": e.scheme, "decision_number": e.decision_number,
                "amount_per_installment": e.amount, "start_period": e.start_period, "source": "ROLL",
            })
        result = RowResult(e.row, outcome, beneficiary_id, entitlement_id)
        results.append(result)
        if e.method is not None:
            changes.append(MethodChange(beneficiary_id, beneficiary_name, e.method, "ROLL"))
            result_of_change[beneficiary_id] = result
    if new_people:
        await ctx.db.execute(beneficiaries.insert(), new_people)
    if new_entitlements:
        await ctx.db.execute(entitlements.insert(), new_entitlements)
    if changes:
        for outcome in await apply_method_changes(ctx, changes, dict(methods)):
            result = result_of_change[outcome.beneficiary_id]
            if outcome.changed and result.outcome == UNCHANGED:
                result.outcome = UPDATED
    await ctx.flush()
    return results


async def apply_method_chunk(ctx: Context, entries: list[MethodEntry], channel: str,
                             acting_agency: str | None = None) -> list[RowResult]:
    people = await _people(ctx, [e.national_id for e in entries])
    # Only an agency paying the person may redirect their money.
    paying = (await ownership.paying_agencies(ctx.db, [p.id for p in people.values()], period_of(ctx.now))
              if acting_agency is not None else {})
    results: list[RowResult] = []
    changes: list[MethodChange] = []
    by_person: dict[str, RowResult] = {}
    for e in entries:
        person = people.get(e.national_id)
        if person is None:
            results.append(_reject(e, "national_id", "no beneficiary is registered with this national id"))
            continue
        if acting_agency is not None and acting_agency not in paying.get(person.id, frozenset()):
            results.append(_reject(e, "national_id", ownership.not_paid_by(acting_agency)))
            continue
        result = RowResult(e.row, UNCHANGED, person.id)
        results.append(result)
        changes.append(MethodChange(person.id, person.full_name, e.method, channel))
        by_person[person.id] = result
    for outcome in await apply_method_changes(ctx, changes):
        result = by_person[outcome.beneficiary_id]
        result.entity_id = outcome.method_id
        result.outcome = UPDATED if outcome.changed else UNCHANGED
    await ctx.flush()
    return results


# --- the upload as a whole -------------------------------------------------------------------


@dataclass
class UploadReport:
    upload_id: str
    kind: str
    format: str
    total_rows: int
    results: list[RowResult]

    def count(self, *outcomes: str) -> int:
        return sum(1 for r in self.results if r.outcome in outcomes)


async def run_upload(engine: AsyncEngine, outbox: Outbox, actor: str, upload: Upload,
                     acting_agency: str | None) -> UploadReport:
    now = datetime.now(UTC)
    today = vietnam_today(now)
    upload_id = str(uuid.uuid4())
    postgres = not is_sqlite(engine)
    results: list[RowResult] = []
    entries: list[Any] = []
    seen: dict[Any, int] = {}
    for row_number, cells in upload.rows:
        prefix = upload.prefix(row_number)
        if upload.kind == ROLL:
            entry: Any = read_roll_row(cells, row_number, prefix, today, acting_agency)
            keys = [] if isinstance(entry, list) else [
                ("decision", entry.agency, entry.decision_number), ("person-scheme", entry.national_id, entry.scheme)]
        else:
            entry = read_method_row(cells, row_number, prefix, today)
            keys = [] if isinstance(entry, list) else [("person", entry.national_id)]
        if isinstance(entry, list):
            results.append(RowResult(row_number, REJECTED, errors=entry, cells=cells))
            continue
        duplicate = next((seen[k] for k in keys if k in seen), None)
        if duplicate is not None:
            column = "decision_number" if upload.kind == ROLL and keys[0] in seen else "national_id"
            results.append(RowResult(row_number, REJECTED, cells=cells, errors=[
                FieldError(f"{prefix}/{column}", f"repeats row {duplicate} of this upload")]))
            continue
        for k in keys:
            seen[k] = row_number
        entries.append(entry)

    async def in_transaction(work: Callable[[Context], Awaitable[list[RowResult]]]) -> list[RowResult]:
        async with engine.begin() as conn:
            ctx = Context(conn, outbox, actor, datetime.now(UTC), postgres)
            chunk_results = await work(ctx)
            await _save_rows(conn, upload_id, chunk_results)
            return chunk_results

    channel = "API" if upload.json_rows else "SPREADSHEET"

    def work_for(chunk: list[Any]) -> Callable[[Context], Awaitable[list[RowResult]]]:
        if upload.kind == ROLL:
            return lambda ctx: apply_roll_chunk(ctx, chunk)
        return lambda ctx: apply_method_chunk(ctx, chunk, channel, acting_agency)

    async with engine.begin() as conn:
        await conn.execute(uploads.insert().values(
            id=upload_id, kind=upload.kind, client_id=actor, filename=upload.filename, format=upload.format,
            content_hash=hashlib.sha256(upload.content).hexdigest(), columns=upload.columns,
            total_rows=len(upload.rows), accepted=0, unchanged=0, rejected=0, created_at=now,
        ))
        await _save_rows(conn, upload_id, results)
    late: list[RowResult] = []  # rows refused after their chunk failed: saved with the totals
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        results += await _apply_with_fallback(in_transaction, work_for, chunk, upload_id, late)
    results += late
    report = UploadReport(upload_id, upload.kind, upload.format, len(upload.rows), sorted(results, key=lambda r: r.row))
    async with engine.begin() as conn:
        await _save_rows(conn, upload_id, late)
        await conn.execute(update(uploads).where(uploads.c.id == upload_id).values(
            accepted=report.count(REGISTERED, UPDATED), unchanged=report.count(UNCHANGED),
            rejected=report.count(REJECTED),
        ))
    log.info("upload applied", extra={"fields": {
        "upload_id": upload_id, "kind": upload.kind, "rows": len(upload.rows),
        "accepted": report.count(REGISTERED, UPDATED), "unchanged": report.count(UNCHANGED),
        "rejected": report.count(REJECTED)}})
    return report


async def _apply_with_fallback(in_transaction, work_for, chunk: list[Any], upload_id: str,
                               late: list[RowResult]) -> list[RowResult]:
    for _attempt in range(2):
        try:
            return await in_transaction(work_for(chunk))
        except (IntegrityError, DBAPIError) as exc:
            log.warning("upload chunk failed, retrying", extra={"fields": {
                "upload_id": upload_id, "rows": len(chunk), "error": type(exc).__name__}})
    # One row per transaction: a row that still fails is refused alone, the others go in.
    results: list[RowResult] = []
    for entry in chunk:
        try:
            results += await in_transaction(work_for([entry]))
        except (IntegrityError, DBAPIError):
            late.append(_reject(entry, "national_id", "conflicted with a concurrent change; upload the row again"))
    return results


async def _save_rows(conn: Any, upload_id: str, results: list[RowResult]) -> None:
    if not results:
        return
    await conn.execute(upload_rows.insert(), [
        {"upload_id": upload_id, "seq": r.row, "row_number": r.row, "outcome": r.outcome,
         "beneficiary_id": r.beneficiary_id, "entity_id": r.entity_id,
         "errors": [{"pointer": e.pointer, "detail": e.detail} for e in r.errors] or None,
         "raw": r.cells if r.outcome == REJECTED else None}
        for r in results
    ])


def masked_cells(cells: Mapping[str, Any], pii: bool) -> dict[str, Any]:
    if pii:
        return dict(cells)
    out = dict(cells)
    for column in ("national_id", "rep_national_id"):
        if out.get(column):
            out[column] = mask_national_id(str(out[column]))
    if out.get("account_number"):
        out["account_number"] = mask_account(str(out["account_number"]))
    return out
