"""Filing claims, deciding them, and stopping entitlements."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from services.intake.adapters import repository
from services.intake.domain import claims as claim_rules
from services.intake.domain import entitlements as entitlement_rules
from services.intake.domain import payment_methods as pm
from services.intake.domain.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
)
from services.intake.domain.identity import mask_account, mask_national_id, normalise_name
from services.intake.domain.schedules import Schedule
from services.intake.domain.schemes import agency_for
from services.intake.domain.validation import address_problems, applicant_problems
from services.intake.service_layer import revalidation
from services.intake.service_layer.common import (
    IntakeUnitOfWork,
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
from shared.periods import period_of, vietnam_date
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
    today = vietnam_date(now)
    name = normalise_name(cmd.full_name)
    errors = applicant_problems(
        cmd.national_id, name, cmd.date_of_birth, cmd.si_number, cmd.scheme, today, "/applicant"
    )
    errors += address_problems(cmd.commune_code, cmd.commune_list_date, "/address")
    payment = pm.normalise(cmd.payment)
    errors += pm.method_problems(payment, today, cmd.national_id, "/payment")
    if errors:
        raise Invalid(errors)
    claim_id = str(uuid.uuid4())
    agency = agency_for(cmd.scheme)
    return Filing(
        cmd=cmd,
        actor=actor,
        now=now,
        correlation_id=correlation_id.get(),
        traceparent=current_traceparent(),
        claim_id=claim_id,
        beneficiary_id=str(uuid.uuid4()),
        agency=agency,
        name=name,
        payment=payment,
        body=orjson.dumps(
            {
                "claim_id": claim_id,
                "portal_dossier_id": cmd.portal_dossier_id,
                "beneficiary_id": _PLACEHOLDER,
                "status": claim_rules.RECEIVED,
                "scheme": cmd.scheme,
                "agency": agency,
                "received_at": now.isoformat(),
            }
        ).decode(),
        claim_audit={
            "portal_dossier_id": cmd.portal_dossier_id,
            "scheme": cmd.scheme,
            "beneficiary_id": _PLACEHOLDER,
            "national_id": mask_national_id(cmd.national_id),
            "requested_method": payment.kind,
            "account_number": mask_account(payment.account_number),
            "status": claim_rules.RECEIVED,
        },
        beneficiary_audit={
            "national_id": mask_national_id(cmd.national_id),
            "registered_via": "PORTAL",
            "commune_code": cmd.commune_code,
        },
    )


def filing_events(filing: Filing, beneficiary_id: str) -> list[Any]:
    """BeneficiaryRegistered (for a new person) and ClaimReceived."""
    cmd = filing.cmd
    events: list[Any] = []
    if beneficiary_id == filing.beneficiary_id:
        events.append(
            BeneficiaryRegistered(
                beneficiary_id=beneficiary_id,
                full_name=filing.name,
                commune_code=cmd.commune_code,
                commune_list_date=cmd.commune_list_date,
                registered_via="PORTAL",
                registered_at=filing.now,
            )
        )
    events.append(
        ClaimReceived(
            claim_id=filing.claim_id,
            portal_dossier_id=cmd.portal_dossier_id,
            beneficiary_id=beneficiary_id,
            scheme=cmd.scheme,
            agency=filing.agency,
            commune_code=cmd.commune_code,
            commune_list_date=cmd.commune_list_date,
            requested_method=filing.payment.kind,
            received_at=filing.now,
        )
    )
    return events


async def file_claim(uow: IntakeUnitOfWork, cmd: FileClaim) -> bytes:
    """The beneficiary (found by CCCD or registered), the claim, the idempotency record, the audit
    entries and the events. Returns the 201 body; raises Replay or ModifiedRequest for a dossier
    id already used. (Under load, the filing batcher writes many filings per transaction.)"""
    return await write_prepared_filing(uow, prepare_filing(cmd, uow.actor, uow.now))


async def write_prepared_filing(uow: IntakeUnitOfWork, filing: Filing) -> bytes:
    """One filing on its own: its answer, or its refusal raised."""
    [outcome] = await write_filings(uow, [filing])
    if isinstance(outcome, bytes):
        await uow.flush()
        return outcome
    if isinstance(outcome, DomainError):
        raise outcome
    cmd = filing.cmd  # ALREADY_FILED
    await raise_replay_or_conflict(uow, FILING_SCOPE, cmd.portal_dossier_id, cmd.request_hash)
    raise Conflict("the dossier id is being filed concurrently; retry")


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


ALREADY_FILED = "ALREADY_FILED"  # the dossier id was used: nothing of this filing was written
FilingOutcome = bytes | DomainError | str  # the 201 answer, the refusal, or ALREADY_FILED


async def write_filings(uow: IntakeUnitOfWork, filings: Sequence[Filing]) -> list[FilingOutcome]:
    """The one write of claim filings, a batch or a list of one (at most one filing per national
    id and per dossier id). Each filing keeps its own outcome: an identity that does not match the
    registered person is refused, a dossier id already used is ALREADY_FILED, and nothing of
    those is written; the others get their claim, audit entries and events (with their own
    request's correlation id and trace)."""
    people = await repository.upsert_filed_people(uow, [_person_row(f) for f in filings])
    outcomes: list[FilingOutcome] = []
    writable: list[tuple[int, Filing, str]] = []
    for index, filing in enumerate(filings):
        person = people[filing.cmd.national_id]
        try:
            if person.id != filing.beneficiary_id:
                check_same_person(
                    person.full_name,
                    person.date_of_birth,
                    filing.name,
                    filing.cmd.date_of_birth,
                    "/applicant",
                )
        except DomainError as exc:
            outcomes.append(exc)
            continue
        outcomes.append(ALREADY_FILED)  # until written
        writable.append((index, filing, person.id))
    fresh = await repository.write_filed_claims(
        uow, FILING_SCOPE, [_filed_claim(f, b) for _, f, b in writable]
    )
    orphans: list[str] = []  # people registered for a filing that is not written
    for index, filing, beneficiary_id in writable:
        if filing.cmd.portal_dossier_id in fresh:
            outcomes[index] = filing.answer(beneficiary_id)
            uow.emit_for_request(
                filing_events(filing, beneficiary_id),
                correlation=filing.correlation_id,
                traceparent=filing.traceparent,
            )
        elif beneficiary_id == filing.beneficiary_id:
            orphans.append(beneficiary_id)
    await repository.forget_people(uow, orphans)
    return outcomes


def _person_row(filing: Filing) -> dict[str, Any]:
    cmd = filing.cmd
    return {
        "id": filing.beneficiary_id,
        "national_id": cmd.national_id,
        "full_name": filing.name,
        "date_of_birth": cmd.date_of_birth,
        "si_number": cmd.si_number,
        "commune_code": cmd.commune_code,
        "commune_list_date": cmd.commune_list_date,
    }


def _filed_claim(f: Filing, beneficiary_id: str) -> dict[str, Any]:
    """`repository.FILED_CLAIM_COLUMNS` of a filing for the person `beneficiary_id`."""
    cmd = f.cmd
    return {
        "dossier": cmd.portal_dossier_id,
        "request_hash": cmd.request_hash,
        "body": f.answer(beneficiary_id).decode(),
        "client_id": f.actor,
        "claim_id": f.claim_id,
        "beneficiary_id": beneficiary_id,
        "scheme": cmd.scheme,
        "agency": f.agency,
        "full_name": f.name,
        "date_of_birth": cmd.date_of_birth,
        "si_number": cmd.si_number,
        "commune_code": cmd.commune_code,
        "commune_list_date": cmd.commune_list_date,
        "requested_method": f.payment.kind,
        "payment": orjson.dumps(document_of_spec(f.payment)).decode(),
        "received_at": f.now,
        "is_new": beneficiary_id == f.beneficiary_id,
        "beneficiary_audit": orjson.dumps(f.beneficiary_audit).decode(),
        "claim_audit": f.claim_audit_json(beneficiary_id),
        "correlation_id": f.correlation_id,
    }


def check_same_person(
    registered_name: str, registered_dob: date, name: str, dob: date, prefix: str
) -> None:
    errors = []
    if registered_dob != dob:
        errors.append(
            FieldError(
                f"{prefix}/date_of_birth",
                "differs from the person registered with this national id",
            )
        )
    if not same_name(registered_name, name):
        errors.append(
            FieldError(
                f"{prefix}/full_name", "differs from the person registered with this national id"
            )
        )
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


async def decide_claim(uow: IntakeUnitOfWork, cmd: DecideClaim, acting_agency: str | None) -> bytes:
    """Approve (an entitlement, and the requested payment method) or reject, once."""
    claim = await _claim_to_decide(uow, cmd, acting_agency)
    status = claim_rules.next_status(claim.status, cmd.outcome)
    entitlement_id: str | None = None
    method_id: str | None = None
    if cmd.approval is not None:
        entitlement_id = await _grant_entitlement(uow, claim, cmd.approval)
        decision = _approval_decision(status, cmd.approval)
        _emit_approval(uow, claim, cmd.approval, entitlement_id)
        method_id = await _record_requested_method(uow, claim)
    else:
        assert cmd.rejection is not None
        decision = _reject_claim(uow, claim, status, cmd.rejection)
    return await _record_decision(uow, cmd, claim, status, decision, entitlement_id, method_id)


async def _claim_to_decide(
    uow: IntakeUnitOfWork, cmd: DecideClaim, acting_agency: str | None
) -> Any:
    """The claim, locked, once the caller may decide it; a decided claim replays its decision."""
    claim = await repository.claim_for_update(uow, cmd.claim_id)
    if claim is None:
        raise NotFound("no such claim")
    if acting_agency is not None and acting_agency != claim.agency:
        raise Forbidden(f"this claim is decided by {claim.agency}, not {acting_agency}")
    if acting_agency is not None and acting_agency != cmd.agency:
        raise Forbidden(f"this client acts for {acting_agency}, not {cmd.agency}")
    if claim.status != claim_rules.RECEIVED:
        await raise_replay_or_conflict(uow, DECISION_SCOPE, cmd.claim_id, cmd.request_hash)
        claim_rules.next_status(claim.status, cmd.outcome)  # raises: decided once
    return claim


def _granted_row(
    uow: IntakeUnitOfWork, claim: Any, approval: claim_rules.Approval, entitlement_id: str
) -> dict[str, Any]:
    schedule = approval.schedule
    return {
        "id": entitlement_id,
        "beneficiary_id": claim.beneficiary_id,
        "claim_id": claim.id,
        "scheme": claim.scheme,
        "agency": claim.agency,
        "decision_number": approval.decision_number,
        "amount_per_installment": approval.amount_per_installment,
        "schedule_kind": schedule.kind,
        "start_period": schedule.start_period,
        "installments": schedule.count if schedule.kind != "OPEN_MONTHLY" else None,
        "status": entitlement_rules.ACTIVE,
        "commune_code": claim.commune_code,
        "commune_list_date": claim.commune_list_date,
        "source": "DECISION",
        "client_id": uow.actor,
        "granted_at": uow.now,
    }


async def _grant_entitlement(
    uow: IntakeUnitOfWork, claim: Any, approval: claim_rules.Approval
) -> str:
    """The approved claim's entitlement: its decision number unused, one per person and scheme."""
    claim_rules.check_approval(claim.scheme, approval)
    if await repository.decision_number_taken(uow, approval.agency, approval.decision_number):
        raise Conflict(
            f"decision number {approval.decision_number} of {approval.agency} is already used"
        )
    schedule = approval.schedule
    held = await held_entitlements(uow, [claim.beneficiary_id], lock=True)
    entitlement_rules.check_one_per_scheme(
        held.get(claim.beneficiary_id, []), claim.scheme, schedule
    )
    entitlement_id = str(uuid.uuid4())
    try:
        await repository.insert_entitlements(
            uow, [_granted_row(uow, claim, approval, entitlement_id)]
        )
    except IntegrityError as exc:
        if violates_one_open_per_scheme(exc):
            raise entitlement_rules.DuplicateEntitlement.concurrent(claim.scheme) from None
        raise
    return entitlement_id


def _approval_decision(status: str, approval: claim_rules.Approval) -> dict[str, Any]:
    """The decision as the claim stores and the answer shows it."""
    schedule = approval.schedule
    decision: dict[str, Any] = {
        "outcome": status,
        "agency": approval.agency,
        "decision_number": approval.decision_number,
        "amount_per_installment": approval.amount_per_installment,
        "schedule": {
            "kind": schedule.kind,
            "start_period": schedule.start_period,
            "installments": schedule.count,
        },
    }
    if approval.average_salary is not None:
        decision.update(
            average_salary=approval.average_salary,
            contribution_months=approval.contribution_months,
            region=approval.region,
            salary_regime=approval.salary_regime,
        )
        if approval.contract_ended_on is not None:
            decision.update(contract_ended_on=approval.contract_ended_on.isoformat())
    return decision


def _emit_approval(
    uow: IntakeUnitOfWork, claim: Any, approval: claim_rules.Approval, entitlement_id: str
) -> None:
    schedule = approval.schedule
    uow.emit(
        ClaimDecided(
            claim_id=claim.id,
            beneficiary_id=claim.beneficiary_id,
            scheme=claim.scheme,
            agency=claim.agency,
            outcome="APPROVED",
            decision_number=approval.decision_number,
            entitlement_id=entitlement_id,
            amount_per_installment=approval.amount_per_installment,
            installments=schedule.count,
            commune_code=claim.commune_code,
            commune_list_date=claim.commune_list_date,
            decided_at=uow.now,
        )
    )
    uow.emit(
        EntitlementGranted(
            entitlement_id=entitlement_id,
            beneficiary_id=claim.beneficiary_id,
            claim_id=claim.id,
            scheme=claim.scheme,
            agency=claim.agency,
            decision_number=approval.decision_number,
            amount_per_installment=approval.amount_per_installment,
            schedule=ScheduleContract(
                kind=schedule.kind, start_period=schedule.start_period, installments=schedule.count
            ),
            commune_code=claim.commune_code,
            commune_list_date=claim.commune_list_date,
            granted_at=uow.now,
        )
    )


def _reject_claim(
    uow: IntakeUnitOfWork, claim: Any, status: str, rejection: claim_rules.Rejection
) -> dict[str, Any]:
    """The rejection's decision, once its agency is the scheme's; emits ClaimDecided."""
    errors = claim_rules.agency_problems(claim.scheme, rejection.agency)
    if errors:
        raise Invalid(errors)
    uow.emit(
        ClaimDecided(
            claim_id=claim.id,
            beneficiary_id=claim.beneficiary_id,
            scheme=claim.scheme,
            agency=claim.agency,
            outcome="REJECTED",
            decision_number=rejection.decision_number,
            reason_code=rejection.reason_code,
            reason_text=rejection.reason_text,
            commune_code=claim.commune_code,
            commune_list_date=claim.commune_list_date,
            decided_at=uow.now,
        )
    )
    return {
        "outcome": status,
        "agency": rejection.agency,
        "decision_number": rejection.decision_number,
        "reason_code": rejection.reason_code,
        "reason_text": rejection.reason_text,
    }


async def _record_decision(
    uow: IntakeUnitOfWork,
    cmd: DecideClaim,
    claim: Any,
    status: str,
    decision: dict[str, Any],
    entitlement_id: str | None,
    method_id: str | None,
) -> bytes:
    """The claim's new status, its answer (remembered for replays) and its audit entry."""
    await repository.record_decision(
        uow,
        claim.id,
        {
            "status": status,
            "decided_at": uow.now,
            "decision": decision,
            "entitlement_id": entitlement_id,
        },
    )
    body = orjson.dumps(
        {
            "claim_id": claim.id,
            "status": status,
            "decision": decision,
            "entitlement_id": entitlement_id,
            "payment_method_id": method_id,
            "decided_at": uow.now.isoformat(),
        }
    )
    await remember_response(uow, DECISION_SCOPE, claim.id, cmd.request_hash, 200, body)
    _audit_decision(uow, claim, status, decision, entitlement_id)
    await uow.flush()
    return body


def _audit_decision(
    uow: IntakeUnitOfWork,
    claim: Any,
    status: str,
    decision: dict[str, Any],
    entitlement_id: str | None,
) -> None:
    uow.audit(
        "claim.decided",
        "claim",
        claim.id,
        {
            "status": status,
            "previous_status": claim.status,
            "decision_number": decision.get("decision_number"),
            "entitlement_id": entitlement_id,
            "amount_per_installment": decision.get("amount_per_installment"),
            "reason_code": decision.get("reason_code"),
        },
    )


async def _record_requested_method(uow: IntakeUnitOfWork, claim: Any) -> str | None:
    """The method asked for on the portal becomes the beneficiary's (if still valid), unless
    another agency already pays this person: where that money goes stays its to change."""
    paying = (
        await repository.paying_agencies(uow, [claim.beneficiary_id], period_of(uow.now))
    ).get(claim.beneficiary_id, frozenset())
    if paying - {claim.agency}:
        return None
    spec = spec_of_document(claim.payment)
    person = await repository.beneficiary(uow, claim.beneficiary_id)
    if pm.method_problems(spec, vietnam_date(uow.now), person.national_id):
        return None  # e.g. the authorisation expired meanwhile: the agency records a new method
    [outcome] = await apply_method_changes(
        uow, [MethodChange(claim.beneficiary_id, person.full_name, spec, "PORTAL")]
    )
    return outcome.method_id


# --- entitlements a person holds ---------------------------------------------------------------

ONE_OPEN_PER_SCHEME_INDEX = "uq_entitlements_one_open_per_scheme"


async def held_entitlements(
    uow: IntakeUnitOfWork, beneficiary_ids: Iterable[str], *, lock: bool = False
) -> dict[str, list[entitlement_rules.HeldEntitlement]]:
    """The entitlements these people hold, by person, for the one-per-scheme rule. With `lock`
    (PostgreSQL) their beneficiary rows are taken first, in id order, so that grants to one person
    take turns and each sees the one committed before it."""
    ids = sorted(set(beneficiary_ids))
    if not ids:
        return {}
    if lock:
        await repository.lock_beneficiaries(uow, ids)
    held: dict[str, list[entitlement_rules.HeldEntitlement]] = {}
    for row in await repository.held_entitlements(uow, ids):
        held.setdefault(row.beneficiary_id, []).append(
            entitlement_rules.HeldEntitlement(
                row.id,
                row.scheme,
                row.decision_number,
                row.status,
                Schedule(row.schedule_kind, row.start_period, row.installments),
                row.stop_effective_period,
            )
        )
    return held


def violates_one_open_per_scheme(exc: IntegrityError) -> bool:
    """Whether the database refused a second open-ended entitlement of a scheme (not another key)."""
    message = str(exc.orig)
    return (
        ONE_OPEN_PER_SCHEME_INDEX in message
        or "entitlements.beneficiary_id, entitlements.scheme" in message
    )


# --- stopping entitlements -----------------------------------------------------------------


async def stop_entitlement(
    uow: IntakeUnitOfWork,
    entitlement_id: str,
    reason: str,
    effective_period: str,
    acting_agency: str | None,
) -> tuple[dict[str, Any], bool]:
    """Stop an entitlement from a period on. Returns (the entitlement, whether this call changed it)."""
    row = await repository.entitlement_for_update(uow, entitlement_id)
    if row is None:
        raise NotFound("no such entitlement")
    if acting_agency is not None and acting_agency != row.agency:
        raise Forbidden(f"this entitlement belongs to {row.agency}")
    schedule = Schedule(row.schedule_kind, row.start_period, row.installments)
    if not entitlement_rules.check_stop(
        row.status, schedule, reason, effective_period, row.stop_reason, row.stop_effective_period
    ):
        return dict(row._mapping), False
    values = {
        "status": entitlement_rules.STOPPED,
        "stop_reason": reason,
        "stop_effective_period": effective_period,
        "stopped_at": uow.now,
    }
    await repository.stop_entitlement(uow, entitlement_id, values)
    await revalidation.confirm_stop_proposals(uow, entitlement_id)  # what it settles
    uow.emit(
        EntitlementStopped(
            entitlement_id=entitlement_id,
            beneficiary_id=row.beneficiary_id,
            reason=reason,
            effective_period=effective_period,
            stopped_at=uow.now,
        )
    )
    uow.audit(
        "entitlement.stopped",
        "entitlement",
        entitlement_id,
        {
            "status": entitlement_rules.STOPPED,
            "previous_status": row.status,
            "reason": reason,
            "effective_period": effective_period,
        },
    )
    await uow.flush()
    return {**dict(row._mapping), **values}, True


__all__ = ["DecideClaim", "FileClaim", "Replay", "decide_claim", "file_claim", "stop_entitlement"]
