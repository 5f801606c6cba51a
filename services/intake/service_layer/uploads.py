"""Bulk uploads: the beneficiary roll and payment-method updates, as JSON rows, CSV or XLSX.

Every row is checked in memory first; the valid rows are then written in chunks, each chunk one
unit of work (opened by the upload runner, `api/upload_runner.py`) with bulk inserts. A row is all-or-nothing: its beneficiary, entitlement, method,
history, audit and events are written together or not at all. If a chunk fails (for instance a
concurrent upload registered the same person), it is retried, then applied one row at a time.
A re-upload of the same rows changes nothing: they come back as UNCHANGED."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.intake.adapters import repository
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
from services.intake.domain.schedules import Schedule
from services.intake.domain.schemes import AGENCY_OF, ROLL_SCHEMES, agency_for
from services.intake.domain.validation import address_problems, applicant_problems
from services.intake.service_layer import ownership
from services.intake.service_layer.claims import held_entitlements
from services.intake.service_layer.common import IntakeUnitOfWork
from services.intake.service_layer.payment_methods import (
    MethodChange,
    apply_method_changes,
    current_methods,
)
from services.intake.service_layer.rows import METHOD_COLUMNS, RowReader
from shared.events.contracts import BeneficiaryRegistered, EntitlementGranted
from shared.events.contracts import Schedule as ScheduleContract
from shared.periods import is_period, period_of
from shared.vn_text import same_name

ROLL = "ROLL"
PAYMENT_METHODS = "PAYMENT_METHODS"
ROLL_COLUMNS = [
    "national_id",
    "full_name",
    "date_of_birth",
    "si_number",
    "commune_code",
    "commune_list_date",
    "scheme",
    "decision_number",
    "amount_per_installment",
    "start_period",
    *METHOD_COLUMNS,
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


def read_roll_row(
    cells: dict[str, str | None], row: int, prefix: str, today: date, acting_agency: str | None
) -> RollEntry | list[FieldError]:
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
        r.errors += [
            FieldError(f"{prefix}{e.pointer}", e.detail)
            for e in applicant_problems(national_id, full_name, dob, si_number, scheme, today)
            if f"{prefix}{e.pointer}" not in reported
        ]
    elif national_id:
        r.errors += [FieldError(f"{prefix}/national_id", p) for p in cccd_problems(national_id)]
    if commune_code and list_date is not None:
        r.errors += [
            FieldError(f"{prefix}{e.pointer}", e.detail)
            for e in address_problems(commune_code, list_date, list_field="commune_list_date")
        ]
    method = r.method(today, national_id, required=False)
    if r.errors:
        return r.errors
    assert dob is not None and list_date is not None and amount is not None
    return RollEntry(
        row,
        cells,
        prefix,
        national_id,
        full_name,
        dob,
        si_number,
        commune_code,
        list_date,
        scheme,
        agency_for(scheme),
        decision_number,
        amount,
        start_period,
        method,
    )


def read_method_row(
    cells: dict[str, str | None], row: int, prefix: str, today: date
) -> MethodEntry | list[FieldError]:
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
    return RowResult(
        entry.row,
        REJECTED,
        errors=[FieldError(f"{entry.prefix}/{column}", detail)],
        cells=entry.cells,
    )


def conflicted(entry: RollEntry | MethodEntry) -> RowResult:
    """A row that still failed alone after its chunk failed."""
    return _reject(
        entry, "national_id", "conflicted with a concurrent change; upload the row again"
    )


@dataclass
class _RollChunk:
    """What the rows of a roll chunk are checked against, and what they add."""

    people: dict[str, Any]  # by national id
    by_decision: dict[tuple[str, str], Any]  # entitlements by (agency, decision number)
    held: dict[str, list[entitlement_rules.HeldEntitlement]]
    methods: dict[str, Mapping[str, Any]]  # current, by beneficiary
    new_people: list[dict[str, Any]] = field(default_factory=list)
    new_entitlements: list[dict[str, Any]] = field(default_factory=list)
    changes: list[MethodChange] = field(default_factory=list)
    result_of_change: dict[str, RowResult] = field(default_factory=dict)


async def apply_roll_chunk(uow: IntakeUnitOfWork, entries: list[RollEntry]) -> list[RowResult]:
    chunk = await _load_roll_chunk(uow, entries)
    results = [_apply_roll_row(uow, chunk, e) for e in entries]
    await _write_roll_chunk(uow, chunk)
    await uow.flush()
    return results


async def _load_roll_chunk(uow: IntakeUnitOfWork, entries: list[RollEntry]) -> _RollChunk:
    people = await repository.beneficiaries_by_national_id(uow, [e.national_id for e in entries])
    keys = {(e.agency, e.decision_number) for e in entries}
    by_decision = {
        (row.agency, row.decision_number): row
        for row in await repository.entitlements_by_decision(uow, keys)
    }
    known_ids = [p.id for p in people.values()]
    held = await held_entitlements(uow, known_ids, lock=True)
    methods = await current_methods(uow, known_ids)
    return _RollChunk(people, by_decision, held, dict(methods))


def _identity_refusal(person: Any, e: RollEntry) -> RowResult | None:
    """The row refused when it names the registered person otherwise."""
    if person.date_of_birth != e.date_of_birth:
        return _reject(
            e, "date_of_birth", "differs from the person registered with this national id"
        )
    if not same_name(person.full_name, e.full_name):
        return _reject(e, "full_name", "differs from the person registered with this national id")
    return None


def _apply_roll_row(uow: IntakeUnitOfWork, chunk: _RollChunk, e: RollEntry) -> RowResult:
    """One row: refused, UNCHANGED (its entitlement is registered already) or REGISTERED."""
    person = chunk.people.get(e.national_id)
    if person is not None:
        refusal = _identity_refusal(person, e)
        if refusal is not None:
            return refusal
        beneficiary_id, beneficiary_name = person.id, person.full_name
    else:
        beneficiary_id, beneficiary_name = str(uuid.uuid4()), e.full_name
    existing = chunk.by_decision.get((e.agency, e.decision_number))
    if existing is not None:
        same = (
            existing.beneficiary_id == beneficiary_id
            and existing.scheme == e.scheme
            and existing.amount_per_installment == e.amount
            and existing.start_period == e.start_period
        )
        if not same:
            return _reject(
                e,
                "decision_number",
                f"decision {e.decision_number} of {e.agency} is already registered with other details",
            )
        result = RowResult(e.row, UNCHANGED, beneficiary_id, existing.id)
    else:
        schedule = Schedule("OPEN_MONTHLY", e.start_period)
        other = entitlement_rules.overlapping_entitlement(
            chunk.held.get(beneficiary_id, []), e.scheme, schedule
        )
        if other is not None:
            return _reject(e, "scheme", entitlement_rules.duplicate_detail(other))
        if person is None:
            _register_person(uow, chunk, e, beneficiary_id)
        result = RowResult(
            e.row, REGISTERED, beneficiary_id, _register_entitlement(uow, chunk, e, beneficiary_id)
        )
    if e.method is not None:
        chunk.changes.append(MethodChange(beneficiary_id, beneficiary_name, e.method, "ROLL"))
        chunk.result_of_change[beneficiary_id] = result
    return result


def _register_person(
    uow: IntakeUnitOfWork, chunk: _RollChunk, e: RollEntry, beneficiary_id: str
) -> None:
    chunk.new_people.append(
        {
            "id": beneficiary_id,
            "national_id": e.national_id,
            "full_name": e.full_name,
            "date_of_birth": e.date_of_birth,
            "si_number": e.si_number,
            "commune_code": e.commune_code,
            "commune_list_date": e.commune_list_date,
            "registered_via": "ROLL",
            "registered_at": uow.now,
        }
    )
    uow.emit(
        BeneficiaryRegistered(
            beneficiary_id=beneficiary_id,
            full_name=e.full_name,
            commune_code=e.commune_code,
            commune_list_date=e.commune_list_date,
            registered_via="ROLL",
            registered_at=uow.now,
        )
    )
    uow.audit(
        "beneficiary.registered",
        "beneficiary",
        beneficiary_id,
        {
            "national_id": mask_national_id(e.national_id),
            "registered_via": "ROLL",
            "commune_code": e.commune_code,
        },
    )


def _roll_entitlement_row(
    uow: IntakeUnitOfWork, e: RollEntry, beneficiary_id: str, entitlement_id: str
) -> dict[str, Any]:
    return {
        "id": entitlement_id,
        "beneficiary_id": beneficiary_id,
        "claim_id": None,
        "scheme": e.scheme,
        "agency": e.agency,
        "decision_number": e.decision_number,
        "amount_per_installment": e.amount,
        "schedule_kind": "OPEN_MONTHLY",
        "start_period": e.start_period,
        "installments": None,
        "status": entitlement_rules.ACTIVE,
        "stop_reason": None,
        "stop_effective_period": None,
        "stopped_at": None,
        "commune_code": e.commune_code,
        "commune_list_date": e.commune_list_date,
        "source": "ROLL",
        "client_id": uow.actor,
        "granted_at": uow.now,
    }


def _register_entitlement(
    uow: IntakeUnitOfWork, chunk: _RollChunk, e: RollEntry, beneficiary_id: str
) -> str:
    """An open-ended monthly entitlement for the row; its id."""
    entitlement_id = str(uuid.uuid4())
    chunk.held.setdefault(beneficiary_id, []).append(
        entitlement_rules.HeldEntitlement(
            entitlement_id,
            e.scheme,
            e.decision_number,
            entitlement_rules.ACTIVE,
            Schedule("OPEN_MONTHLY", e.start_period),
        )
    )
    chunk.new_entitlements.append(_roll_entitlement_row(uow, e, beneficiary_id, entitlement_id))
    uow.emit(
        EntitlementGranted(
            entitlement_id=entitlement_id,
            beneficiary_id=beneficiary_id,
            scheme=e.scheme,
            agency=e.agency,
            decision_number=e.decision_number,
            amount_per_installment=e.amount,
            schedule=ScheduleContract(kind="OPEN_MONTHLY", start_period=e.start_period),
            commune_code=e.commune_code,
            commune_list_date=e.commune_list_date,
            granted_at=uow.now,
        )
    )
    uow.audit(
        "entitlement.registered",
        "entitlement",
        entitlement_id,
        {
            "beneficiary_id": beneficiary_id,
            "scheme": e.scheme,
            "decision_number": e.decision_number,
            "amount_per_installment": e.amount,
            "start_period": e.start_period,
            "source": "ROLL",
        },
    )
    return entitlement_id


async def _write_roll_chunk(uow: IntakeUnitOfWork, chunk: _RollChunk) -> None:
    """The chunk's new people and entitlements, then its method changes (an UNCHANGED row whose
    method changed becomes UPDATED)."""
    await repository.insert_beneficiaries(uow, chunk.new_people)
    await repository.insert_entitlements(uow, chunk.new_entitlements)
    if chunk.changes:
        for outcome in await apply_method_changes(uow, chunk.changes, chunk.methods):
            result = chunk.result_of_change[outcome.beneficiary_id]
            if outcome.changed and result.outcome == UNCHANGED:
                result.outcome = UPDATED


async def apply_method_chunk(
    uow: IntakeUnitOfWork,
    entries: list[MethodEntry],
    channel: str,
    acting_agency: str | None = None,
) -> list[RowResult]:
    people = await repository.beneficiaries_by_national_id(uow, [e.national_id for e in entries])
    # Only an agency paying the person may redirect their money.
    paying = (
        await repository.paying_agencies(uow, [p.id for p in people.values()], period_of(uow.now))
        if acting_agency is not None
        else {}
    )
    results: list[RowResult] = []
    changes: list[MethodChange] = []
    by_person: dict[str, RowResult] = {}
    for e in entries:
        person = people.get(e.national_id)
        if person is None:
            results.append(
                _reject(e, "national_id", "no beneficiary is registered with this national id")
            )
            continue
        if acting_agency is not None and acting_agency not in paying.get(person.id, frozenset()):
            results.append(_reject(e, "national_id", ownership.not_paid_by(acting_agency)))
            continue
        result = RowResult(e.row, UNCHANGED, person.id)
        results.append(result)
        changes.append(MethodChange(person.id, person.full_name, e.method, channel))
        by_person[person.id] = result
    for outcome in await apply_method_changes(uow, changes):
        result = by_person[outcome.beneficiary_id]
        result.entity_id = outcome.method_id
        result.outcome = UPDATED if outcome.changed else UNCHANGED
    await uow.flush()
    return results


async def apply_chunk(
    uow: IntakeUnitOfWork,
    upload_id: str,
    upload: Upload,
    chunk: Sequence[Any],
    acting_agency: str | None,
) -> list[RowResult]:
    """One chunk of checked rows applied and its outcomes saved, on the caller's unit of work."""
    if upload.kind == ROLL:
        results = await apply_roll_chunk(uow, list(chunk))
    else:
        channel = "API" if upload.json_rows else "SPREADSHEET"
        results = await apply_method_chunk(uow, list(chunk), channel, acting_agency)
    await save_rows(uow, upload_id, results)
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


def check_rows(
    upload: Upload, today: date, acting_agency: str | None
) -> tuple[list[RowResult], list[Any]]:
    """Every row read and checked in memory: (the refused rows, the entries to apply). A row
    repeating an earlier one (same decision, same person and scheme, same person) is refused."""
    results: list[RowResult] = []
    entries: list[Any] = []
    seen: dict[Any, int] = {}
    for row_number, cells in upload.rows:
        prefix = upload.prefix(row_number)
        keys: list[tuple[str, ...]]
        if upload.kind == ROLL:
            entry: Any = read_roll_row(cells, row_number, prefix, today, acting_agency)
            keys = (
                []
                if isinstance(entry, list)
                else [
                    ("decision", entry.agency, entry.decision_number),
                    ("person-scheme", entry.national_id, entry.scheme),
                ]
            )
        else:
            entry = read_method_row(cells, row_number, prefix, today)
            keys = [] if isinstance(entry, list) else [("person", entry.national_id)]
        if isinstance(entry, list):
            results.append(RowResult(row_number, REJECTED, errors=entry, cells=cells))
            continue
        duplicate = next((seen[k] for k in keys if k in seen), None)
        if duplicate is not None:
            column = "decision_number" if upload.kind == ROLL and keys[0] in seen else "national_id"
            results.append(
                RowResult(
                    row_number,
                    REJECTED,
                    cells=cells,
                    errors=[
                        FieldError(f"{prefix}/{column}", f"repeats row {duplicate} of this upload")
                    ],
                )
            )
            continue
        for k in keys:
            seen[k] = row_number
        entries.append(entry)
    return results, entries


async def open_upload(
    uow: IntakeUnitOfWork, upload_id: str, upload: Upload, refused: list[RowResult]
) -> None:
    """The upload's head (totals to come) and the rows refused on reading."""
    await repository.insert_upload(
        uow,
        {
            "id": upload_id,
            "kind": upload.kind,
            "client_id": uow.actor,
            "filename": upload.filename,
            "format": upload.format,
            "content_hash": hashlib.sha256(upload.content).hexdigest(),
            "columns": upload.columns,
            "total_rows": len(upload.rows),
            "accepted": 0,
            "unchanged": 0,
            "rejected": 0,
            "created_at": uow.now,
        },
    )
    await save_rows(uow, upload_id, refused)


async def close_upload(uow: IntakeUnitOfWork, report: UploadReport, late: list[RowResult]) -> None:
    """The rows refused after their chunk failed, and the upload's totals."""
    await save_rows(uow, report.upload_id, late)
    await repository.set_upload_totals(
        uow,
        report.upload_id,
        accepted=report.count(REGISTERED, UPDATED),
        unchanged=report.count(UNCHANGED),
        rejected=report.count(REJECTED),
    )


async def save_rows(uow: IntakeUnitOfWork, upload_id: str, results: list[RowResult]) -> None:
    await repository.insert_upload_rows(
        uow,
        [
            {
                "upload_id": upload_id,
                "seq": r.row,
                "row_number": r.row,
                "outcome": r.outcome,
                "beneficiary_id": r.beneficiary_id,
                "entity_id": r.entity_id,
                "errors": [{"pointer": e.pointer, "detail": e.detail} for e in r.errors] or None,
                "raw": r.cells if r.outcome == REJECTED else None,
            }
            for r in results
        ],
    )


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
