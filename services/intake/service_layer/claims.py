"""Filing claims, deciding them, and stopping entitlements."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from services.intake.adapters.orm import beneficiaries, claims, entitlements, idempotency_records
from services.intake.domain import claims as claim_rules
from services.intake.domain import entitlements as entitlement_rules
from services.intake.domain import payment_methods as pm
from services.intake.domain.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from services.intake.domain.identity import mask_account, mask_national_id, normalise_name
from services.intake.domain.schedules import Schedule, period_of, vietnam_today
from services.intake.domain.schemes import agency_for
from services.intake.domain.validation import address_problems, applicant_problems
from services.intake.service_layer import ownership
from services.intake.service_layer.common import (
    Context,
    Replay,
    raise_replay_or_conflict,
    remember_response,
)
from services.intake.service_layer.payment_methods import (
    MethodChange,
    apply_method_changes,
    document_of_spec,
    spec_of_document,
)
from shared.events.contracts import (
    BeneficiaryRegistered,
    ClaimDecided,
    ClaimReceived,
    EntitlementGranted,
    EntitlementStopped,
)
from shared.events.contracts import Schedule as ScheduleContract
from shared.observability import correlation_id
from shared.tracing import current_traceparent
from shared.vn_text import same_name

FILING_SCOPE = "claim-filing"
DECISION_SCOPE = "claim-decision"


@dataclass(frozen=True, slots=True)
class FileClaim:
    portal_dossier_id: str
    scheme: str
    national_id: str
    full_name: str
    date_of_birth: date
    si_number: str | None
    commune_code: str
    commune_list_date: date
    payment: pm.MethodSpec
    request_hash: str


def prepare_filing(cmd: FileClaim, actor: str, now: datetime) -> Filing:
    """Check a filing in memory and give it its ids, answer and audit entries (nothing written)."""
    today = vietnam_today(now)
    name = normalise_name(cmd.full_name)
    errors = applicant_problems(cmd.national_id, name, cmd.date_of_birth, cmd.si_number, cmd.scheme, today,
                                "/applicant")
    errors += address_problems(cmd.commune_code, cmd.commune_list_date, "/address")
    payment = pm.normalise(cmd.payment)
    errors += pm.method_problems(payment, today, cmd.national_id, "/payment")
    if errors:
        raise Invalid(errors)
    claim_id = str(uuid.uuid4())
    agency = agency_for(cmd.scheme)
    return Filing(
        cmd=cmd, actor=actor, now=now, correlation_id=correlation_id.get(), traceparent=current_traceparent(),
        claim_id=claim_id, beneficiary_id=str(uuid.uuid4()), agency=agency, name=name, payment=payment,
        body=orjson.dumps({
            "claim_id": claim_id, "portal_dossier_id": cmd.portal_dossier_id, "beneficiary_id": _PLACEHOLDER,
            "status": claim_rules.RECEIVED, "scheme": cmd.scheme, "agency": agency,
            "received_at": now.isoformat(),
        }).decode(),
        claim_audit={
            "portal_dossier_id": cmd.portal_dossier_id, "scheme": cmd.scheme, "beneficiary_id": _PLACEHOLDER,
            "national_id": mask_national_id(cmd.national_id), "requested_method": payment.kind,
            "account_number": mask_account(payment.account_number), "status": claim_rules.RECEIVED,
        },
        beneficiary_audit={"national_id": mask_national_id(cmd.national_id), "registered_via": "PORTAL",
                           "commune_code": cmd.commune_code},
    )


def filing_events(filing: Filing, beneficiary_id: str) -> list[Any]:
    """BeneficiaryRegistered (for a new person) and ClaimReceived."""
    cmd = filing.cmd
    events: list[Any] = []
    if beneficiary_id == filing.beneficiary_id:
        events.append(BeneficiaryRegistered(
            beneficiary_id=beneficiary_id, full_name=filing.name, commune_code=cmd.commune_code,
            commune_list_date=cmd.commune_list_date, registered_via="PORTAL", registered_at=filing.now,
        ))
    events.append(ClaimReceived(
        claim_id=filing.claim_id, portal_dossier_id=cmd.portal_dossier_id, beneficiary_id=beneficiary_id,
        scheme=cmd.scheme, agency=filing.agency, commune_code=cmd.commune_code,  # type: ignore[arg-type]
        commune_list_date=cmd.commune_list_date, requested_method=filing.payment.kind,  # type: ignore[arg-type]
        received_at=filing.now,
    ))
    return events


async def file_claim(ctx: Context, cmd: FileClaim) -> bytes:
    """One transaction: the beneficiary (found by CCCD or registered), the claim, the idempotency
    record, the audit entry and the events. Returns the 201 body; raises Replay or ModifiedRequest
    for a dossier id already used. (Under load, `filing_batch` writes many filings per transaction.)"""
    return await write_prepared_filing(ctx, prepare_filing(cmd, ctx.actor, ctx.now))


async def write_prepared_filing(ctx: Context, filing: Filing) -> bytes:
    cmd = filing.cmd
    write = _write_filing_postgres if ctx.postgres else _write_filing
    person = await write(ctx, cmd, filing)
    if not person.fresh:
        await raise_replay_or_conflict(ctx, FILING_SCOPE, cmd.portal_dossier_id, cmd.request_hash)
        raise Conflict("the dossier id is being filed concurrently; retry")
    if person.id != filing.beneficiary_id:
        check_same_person(person.full_name, person.date_of_birth, filing.name, cmd.date_of_birth, "/applicant")
    ctx.emit(*filing_events(filing, person.id))
    await ctx.flush()
    return filing.answer(person.id)


_PLACEHOLDER = "$beneficiary_id$"


@dataclass(frozen=True, slots=True)
class Filing:
    """A checked filing, ready to write."""

    cmd: FileClaim
    actor: str
    now: datetime
    correlation_id: str | None
    traceparent: str | None  # the filing request's trace, carried to the events of a shared write
    claim_id: str
    beneficiary_id: str  # used if the person is new
    agency: str
    name: str  # NFC
    payment: pm.MethodSpec
    body: str  # the 201 answer, with a placeholder for the beneficiary id
    claim_audit: dict[str, Any]
    beneficiary_audit: dict[str, Any]

    def answer(self, beneficiary_id: str) -> bytes:
        return self.body.replace(_PLACEHOLDER, beneficiary_id).encode()

    def claim_audit_json(self, beneficiary_id: str) -> str:
        return orjson.dumps({**self.claim_audit, "beneficiary_id": beneficiary_id}).decode()


@dataclass(frozen=True, slots=True)
class _Person:
    id: str
    full_name: str
    date_of_birth: date
    fresh: bool  # False: the dossier id was already used (nothing of this filing was written)


def _claim_row(ctx: Context, cmd: FileClaim, filing: Filing) -> dict[str, Any]:
    return {
        "id": filing.claim_id, "portal_dossier_id": cmd.portal_dossier_id, "scheme": cmd.scheme,
        "agency": filing.agency, "status": claim_rules.RECEIVED, "full_name": filing.name,
        "date_of_birth": cmd.date_of_birth, "si_number": cmd.si_number, "commune_code": cmd.commune_code,
        "commune_list_date": cmd.commune_list_date, "requested_method": filing.payment.kind,
        "payment": document_of_spec(filing.payment), "client_id": ctx.actor, "received_at": ctx.now,
    }


async def _write_filing(ctx: Context, cmd: FileClaim, filing: Filing) -> _Person:
    """Any database: one statement per table."""
    upsert = ctx.insert(beneficiaries).values(
        id=filing.beneficiary_id, national_id=cmd.national_id, full_name=filing.name,
        date_of_birth=cmd.date_of_birth, si_number=cmd.si_number, commune_code=cmd.commune_code,
        commune_list_date=cmd.commune_list_date, registered_via="PORTAL", registered_at=ctx.now,
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["national_id"], set_={"national_id": upsert.excluded.national_id}
    ).returning(beneficiaries.c.id, beneficiaries.c.full_name, beneficiaries.c.date_of_birth)
    person = (await ctx.db.execute(upsert)).one()
    body = filing.body.replace(_PLACEHOLDER, person.id).encode()
    remembered = (await ctx.db.execute(
        ctx.insert(idempotency_records)
        .values(scope=FILING_SCOPE, key=cmd.portal_dossier_id, request_hash=cmd.request_hash, status_code=201,
                response_body=body, client_id=ctx.actor, created_at=ctx.now)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(idempotency_records.c.key)
    )).first()
    if remembered is None:
        return _Person(person.id, person.full_name, person.date_of_birth, False)
    await ctx.db.execute(claims.insert().values(beneficiary_id=person.id, **_claim_row(ctx, cmd, filing)))
    if person.id == filing.beneficiary_id:
        ctx.audit("beneficiary.registered", "beneficiary", person.id, filing.beneficiary_audit)
    ctx.audit("claim.filed", "claim", filing.claim_id,
              {**filing.claim_audit, "beneficiary_id": person.id})
    return _Person(person.id, person.full_name, person.date_of_birth, True)


# PostgreSQL: the beneficiary, the idempotency record, the claim and the audit entries in one
# statement (data-modifying CTEs), so a filing costs few round trips.
_FILING_SQL = text("""
WITH ben AS (
    INSERT INTO beneficiaries (id, national_id, full_name, date_of_birth, si_number, commune_code,
                               commune_list_date, registered_via, registered_at)
    VALUES (:beneficiary_id, :national_id, :full_name, :date_of_birth, :si_number, :commune_code,
            :commune_list_date, 'PORTAL', :now)
    ON CONFLICT (national_id) DO UPDATE SET national_id = EXCLUDED.national_id
    RETURNING id, full_name, date_of_birth
), idem AS (
    INSERT INTO idempotency_records (scope, key, request_hash, status_code, response_body, client_id, created_at)
    SELECT :scope, :dossier, :request_hash, 201,
           convert_to(replace(CAST(:body AS text), :placeholder, ben.id), 'UTF8'), :client_id, :now
    FROM ben
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING key
), claim AS (
    INSERT INTO claims (id, portal_dossier_id, beneficiary_id, scheme, agency, status, full_name, date_of_birth,
                        si_number, commune_code, commune_list_date, requested_method, payment, client_id,
                        received_at)
    SELECT :claim_id, :dossier, ben.id, :scheme, :agency, 'RECEIVED', :full_name, :date_of_birth, :si_number,
           :commune_code, :commune_list_date, :requested_method, CAST(:payment AS json), :client_id, :now
    FROM ben, idem
    RETURNING id
), audit AS (
    INSERT INTO audit_log (at, client_id, action, entity_type, entity_id, changes, correlation_id)
    SELECT :now, :client_id, 'beneficiary.registered', 'beneficiary', ben.id,
           CAST(:beneficiary_audit AS json), :correlation_id
    FROM ben, idem WHERE ben.id = :beneficiary_id
    UNION ALL
    SELECT :now, :client_id, 'claim.filed', 'claim', :claim_id,
           CAST(replace(CAST(:claim_audit AS text), :placeholder, ben.id) AS json), :correlation_id
    FROM ben, idem
    RETURNING id
)
SELECT ben.id, ben.full_name, ben.date_of_birth, EXISTS (SELECT 1 FROM claim) AS fresh FROM ben
""")


async def _write_filing_postgres(ctx: Context, cmd: FileClaim, filing: Filing) -> _Person:
    row = (await ctx.db.execute(_FILING_SQL, {
        "beneficiary_id": filing.beneficiary_id, "national_id": cmd.national_id, "full_name": filing.name,
        "date_of_birth": cmd.date_of_birth, "si_number": cmd.si_number, "commune_code": cmd.commune_code,
        "commune_list_date": cmd.commune_list_date, "now": ctx.now, "scope": FILING_SCOPE,
        "dossier": cmd.portal_dossier_id, "request_hash": cmd.request_hash, "body": filing.body,
        "placeholder": _PLACEHOLDER, "client_id": ctx.actor, "claim_id": filing.claim_id, "scheme": cmd.scheme,
        "agency": filing.agency, "requested_method": filing.payment.kind,
        "payment": orjson.dumps(document_of_spec(filing.payment)).decode(),
        "beneficiary_audit": orjson.dumps(filing.beneficiary_audit).decode(),
        "claim_audit": orjson.dumps(filing.claim_audit).decode(), "correlation_id": filing.correlation_id,
    })).one()
    return _Person(row.id, row.full_name, row.date_of_birth, bool(row.fresh))


def check_same_person(registered_name: str, registered_dob: date, name: str, dob: date, prefix: str) -> None:
    errors = []
    if registered_dob != dob:
        errors.append(FieldError(f"{prefix}/date_of_birth", "differs from the person registered with this national id"))
    if not same_name(registered_name, name):
        errors.append(FieldError(f"{prefix}/full_name", "differs from the person registered with this national id"))
    if errors:
        raise Invalid(errors, "the identity does not match the registered beneficiary")


# --- decisions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecideClaim:
    claim_id: str
    outcome: str  # APPROVED or REJECTED
    agency: str
    request_hash: str
    approval: claim_rules.Approval | None = None
    rejection: claim_rules.Rejection | None = None


async def decide_claim(ctx: Context, cmd: DecideClaim, acting_agency: str | None) -> bytes:
    """Approve (an entitlement, and the requested payment method) or reject, once."""
    claim = (await ctx.db.execute(ctx.for_update(select(claims).where(claims.c.id == cmd.claim_id)))).first()
    if claim is None:
        raise NotFound("no such claim")
    if acting_agency is not None and acting_agency != claim.agency:
        raise Forbidden(f"this claim is decided by {claim.agency}, not {acting_agency}")
    if acting_agency is not None and acting_agency != cmd.agency:
        raise Forbidden(f"this client acts for {acting_agency}, not {cmd.agency}")
    if claim.status != claim_rules.RECEIVED:
        await raise_replay_or_conflict(ctx, DECISION_SCOPE, cmd.claim_id, cmd.request_hash)
        claim_rules.next_status(claim.status, cmd.outcome)  # raises: decided once
    status = claim_rules.next_status(claim.status, cmd.outcome)

    entitlement_id: str | None = None
    method_id: str | None = None
    decision: dict[str, Any]
    if cmd.approval is not None:
        approval = cmd.approval
        claim_rules.check_approval(claim.scheme, approval)
        taken = (await ctx.db.execute(
            select(entitlements.c.id).where(entitlements.c.agency == approval.agency,
                                            entitlements.c.decision_number == approval.decision_number)
        )).first()
        if taken is not None:
            raise Conflict(f"decision number {approval.decision_number} of {approval.agency} is already used")
        schedule = approval.schedule
        held = await held_entitlements(ctx, [claim.beneficiary_id], lock=True)
        entitlement_rules.check_one_per_scheme(held.get(claim.beneficiary_id, []), claim.scheme, schedule)
        entitlement_id = str(uuid.uuid4())
        try:
            await ctx.db.execute(entitlements.insert().values(
                id=entitlement_id, beneficiary_id=claim.beneficiary_id, claim_id=claim.id, scheme=claim.scheme,
                agency=claim.agency, decision_number=approval.decision_number,
                amount_per_installment=approval.amount_per_installment, schedule_kind=schedule.kind,
                start_period=schedule.start_period,
                installments=schedule.count if schedule.kind != "OPEN_MONTHLY" else None,
                status=entitlement_rules.ACTIVE, commune_code=claim.commune_code,
                commune_list_date=claim.commune_list_date, source="DECISION", client_id=ctx.actor,
                granted_at=ctx.now,
            ))
        except IntegrityError as exc:
            if violates_one_open_per_scheme(exc):
                raise entitlement_rules.DuplicateEntitlement.concurrent(claim.scheme) from None
            raise
        decision = {
            "outcome": status, "agency": approval.agency, "decision_number": approval.decision_number,
            "amount_per_installment": approval.amount_per_installment,
            "schedule": {"kind": schedule.kind, "start_period": schedule.start_period,
                         "installments": schedule.count},
        }
        if approval.average_salary is not None:
            decision.update(average_salary=approval.average_salary,
                            contribution_months=approval.contribution_months, region=approval.region,
                            salary_regime=approval.salary_regime)
            if approval.contract_ended_on is not None:
                decision.update(contract_ended_on=approval.contract_ended_on.isoformat())
        ctx.emit(ClaimDecided(
            claim_id=claim.id, beneficiary_id=claim.beneficiary_id, scheme=claim.scheme, agency=claim.agency,
            outcome="APPROVED", decision_number=approval.decision_number, entitlement_id=entitlement_id,
            amount_per_installment=approval.amount_per_installment, installments=schedule.count,
            commune_code=claim.commune_code, commune_list_date=claim.commune_list_date, decided_at=ctx.now,
        ))
        ctx.emit(EntitlementGranted(
            entitlement_id=entitlement_id, beneficiary_id=claim.beneficiary_id, claim_id=claim.id,
            scheme=claim.scheme, agency=claim.agency, decision_number=approval.decision_number,
            amount_per_installment=approval.amount_per_installment,
            schedule=ScheduleContract(kind=schedule.kind, start_period=schedule.start_period,  # type: ignore[arg-type]
                                      installments=schedule.count),
            commune_code=claim.commune_code, commune_list_date=claim.commune_list_date, granted_at=ctx.now,
        ))
        method_id = await _record_requested_method(ctx, claim)
    else:
        rejection = cmd.rejection
        assert rejection is not None
        errors = claim_rules.agency_problems(claim.scheme, rejection.agency)
        if errors:
            raise Invalid(errors)
        decision = {"outcome": status, "agency": rejection.agency, "decision_number": rejection.decision_number,
                    "reason_code": rejection.reason_code, "reason_text": rejection.reason_text}
        ctx.emit(ClaimDecided(
            claim_id=claim.id, beneficiary_id=claim.beneficiary_id, scheme=claim.scheme, agency=claim.agency,
            outcome="REJECTED", decision_number=rejection.decision_number, reason_code=rejection.reason_code,
            reason_text=rejection.reason_text, commune_code=claim.commune_code,
            commune_list_date=claim.commune_list_date, decided_at=ctx.now,
        ))
    await ctx.db.execute(
        update(claims).where(claims.c.id == claim.id)
        .values(status=status, decided_at=ctx.now, decision=decision, entitlement_id=entitlement_id)
    )
    body = orjson.dumps({
        "claim_id": claim.id, "status": status, "decision": decision, "entitlement_id": entitlement_id,
        "payment_method_id": method_id, "decided_at": ctx.now.isoformat(),
    })
    await remember_response(ctx, DECISION_SCOPE, claim.id, cmd.request_hash, 200, body)
    ctx.audit("claim.decided", "claim", claim.id, {
        "status": status, "previous_status": claim.status, "decision_number": decision.get("decision_number"),
        "entitlement_id": entitlement_id, "amount_per_installment": decision.get("amount_per_installment"),
        "reason_code": decision.get("reason_code"),
    })
    await ctx.flush()
    return body


async def _record_requested_method(ctx: Context, claim: Any) -> str | None:
    """The method asked for on the portal becomes the beneficiary's (if still valid), unless
    another agency already pays this person: where that money goes stays its to change."""
    paying = (await ownership.paying_agencies(ctx.db, [claim.beneficiary_id], period_of(ctx.now))
              ).get(claim.beneficiary_id, frozenset())
    if paying - {claim.agency}:
        return None
    spec = spec_of_document(claim.payment)
    person = (await ctx.db.execute(
        select(beneficiaries.c.full_name, beneficiaries.c.national_id).where(beneficiaries.c.id == claim.beneficiary_id)
    )).one()
    if pm.method_problems(spec, vietnam_today(ctx.now), person.national_id):
        return None  # e.g. the authorisation expired meanwhile: the agency records a new method
    [outcome] = await apply_method_changes(
        ctx, [MethodChange(claim.beneficiary_id, person.full_name, spec, "PORTAL")]
    )
    return outcome.method_id


# --- entitlements a person holds ---------------------------------------------------------------

ONE_OPEN_PER_SCHEME_INDEX = "uq_entitlements_one_open_per_scheme"


async def held_entitlements(ctx: Context, beneficiary_ids: Iterable[str], *,
                            lock: bool = False) -> dict[str, list[entitlement_rules.HeldEntitlement]]:
    """The entitlements these people hold, by person, for the one-per-scheme rule. With `lock`
    (PostgreSQL) their beneficiary rows are taken first, in id order, so that grants to one person
    take turns and each sees the one committed before it."""
    ids = sorted(set(beneficiary_ids))
    if not ids:
        return {}
    if lock and ctx.postgres:
        # NO KEY UPDATE: grants take turns, while inserts that merely reference the person do not wait.
        await ctx.db.execute(select(beneficiaries.c.id).where(beneficiaries.c.id.in_(ids))
                             .order_by(beneficiaries.c.id).with_for_update(key_share=True))
    held: dict[str, list[entitlement_rules.HeldEntitlement]] = {}
    rows = await ctx.db.execute(
        select(entitlements.c.id, entitlements.c.beneficiary_id, entitlements.c.scheme,
               entitlements.c.decision_number, entitlements.c.status, entitlements.c.schedule_kind,
               entitlements.c.start_period, entitlements.c.installments, entitlements.c.stop_effective_period)
        .where(entitlements.c.beneficiary_id.in_(ids))
    )
    for row in rows:
        held.setdefault(row.beneficiary_id, []).append(entitlement_rules.HeldEntitlement(
            row.id, row.scheme, row.decision_number, row.status,
            Schedule(row.schedule_kind, row.start_period, row.installments), row.stop_effective_period))
    return held


def violates_one_open_per_scheme(exc: IntegrityError) -> bool:
    """Whether the database refused a second open-ended entitlement of a scheme (not another key)."""
    message = str(exc.orig)
    return ONE_OPEN_PER_SCHEME_INDEX in message or "entitlements.beneficiary_id, entitlements.scheme" in message


# --- stopping entitlements -----------------------------------------------------------------


async def stop_entitlement(ctx: Context, entitlement_id: str, reason: str, effective_period: str,
                           acting_agency: str | None) -> tuple[dict[str, Any], bool]:
    """Stop an entitlement from a period on. Returns (the entitlement, whether this call changed it)."""
    row = (await ctx.db.execute(
        ctx.for_update(select(entitlements).where(entitlements.c.id == entitlement_id))
    )).first()
    if row is None:
        raise NotFound("no such entitlement")
    if acting_agency is not None and acting_agency != row.agency:
        raise Forbidden(f"this entitlement belongs to {row.agency}")
    schedule = Schedule(row.schedule_kind, row.start_period, row.installments)
    if not entitlement_rules.check_stop(row.status, schedule, reason, effective_period, row.stop_reason,
                                        row.stop_effective_period):
        return dict(row._mapping), False
    values = {"status": entitlement_rules.STOPPED, "stop_reason": reason,
              "stop_effective_period": effective_period, "stopped_at": ctx.now}
    await ctx.db.execute(update(entitlements).where(entitlements.c.id == entitlement_id).values(**values))
    ctx.emit(EntitlementStopped(
        entitlement_id=entitlement_id, beneficiary_id=row.beneficiary_id, reason=reason,  # type: ignore[arg-type]
        effective_period=effective_period, stopped_at=ctx.now,
    ))
    ctx.audit("entitlement.stopped", "entitlement", entitlement_id,
              {"status": entitlement_rules.STOPPED, "previous_status": row.status, "reason": reason,
               "effective_period": effective_period})
    await ctx.flush()
    return {**dict(row._mapping), **values}, True


__all__ = ["DecideClaim", "FileClaim", "Replay", "decide_claim", "file_claim", "stop_entitlement"]
