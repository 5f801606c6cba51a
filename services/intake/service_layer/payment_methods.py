"""Payment-method registry: every change is a new method row (the old one superseded), with its
history (who, when, which channel), its audit entry and a `PaymentMethodChanged` event. A bank
account stays pending until payout's verification result arrives."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.intake.adapters import repository
from services.intake.domain import payment_methods as pm
from services.intake.domain.identity import mask_account, mask_national_id
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.events.contracts import (
    PaymentMethodChanged,
    PaymentMethodVerificationRecorded,
    Representative,
)


@dataclass(frozen=True, slots=True)
class MethodChange:
    beneficiary_id: str
    beneficiary_name: str
    spec: pm.MethodSpec
    channel: str  # PORTAL, API, SPREADSHEET or ROLL


@dataclass(frozen=True, slots=True)
class MethodOutcome:
    beneficiary_id: str
    method_id: str
    changed: bool
    status: str


def spec_of_row(row: Mapping[str, Any]) -> pm.MethodSpec:
    rep = None
    if row["rep_national_id"] is not None:
        rep = pm.RepresentativeSpec(
            national_id=row["rep_national_id"],
            full_name=row["rep_full_name"],
            relationship=row["rep_relationship"],
            power_of_attorney_ref=row["rep_power_of_attorney_ref"],
            valid_from=row["rep_valid_from"],
            valid_until=row["rep_valid_until"],
        )
    return pm.MethodSpec(
        row["kind"], row["bank_bin"], row["account_number"], rep, row["cash_reason"]
    )


def spec_of_document(doc: Mapping[str, Any]) -> pm.MethodSpec:
    """From the JSON form a claim stores (see `document_of_spec`)."""
    from datetime import date

    rep_doc = doc.get("representative")
    rep = None
    if rep_doc:
        rep = pm.RepresentativeSpec(
            national_id=rep_doc["national_id"],
            full_name=rep_doc["full_name"],
            relationship=rep_doc["relationship"],
            power_of_attorney_ref=rep_doc["power_of_attorney_ref"],
            valid_from=date.fromisoformat(rep_doc["valid_from"]),
            valid_until=date.fromisoformat(rep_doc["valid_until"])
            if rep_doc.get("valid_until")
            else None,
        )
    return pm.MethodSpec(
        doc["method"], doc.get("bank_bin"), doc.get("account_number"), rep, doc.get("cash_reason")
    )


def document_of_spec(spec: pm.MethodSpec) -> dict[str, Any]:
    rep = spec.representative
    return {
        "method": spec.kind,
        "bank_bin": spec.bank_bin,
        "account_number": spec.account_number,
        "cash_reason": spec.cash_reason,
        "representative": None
        if rep is None
        else {
            "national_id": rep.national_id,
            "full_name": rep.full_name,
            "relationship": rep.relationship,
            "power_of_attorney_ref": rep.power_of_attorney_ref,
            "valid_from": rep.valid_from.isoformat(),
            "valid_until": rep.valid_until.isoformat() if rep.valid_until else None,
        },
    }


def masked_spec(spec: pm.MethodSpec) -> dict[str, Any]:
    """What the audit trail and the history keep: no raw account number or CCCD."""
    out: dict[str, Any] = {"method": spec.kind}
    if spec.bank_bin:
        out["bank_bin"] = spec.bank_bin
    if spec.account_number:
        out["account_number"] = mask_account(spec.account_number)
    if spec.representative is not None:
        out["representative_national_id"] = mask_national_id(spec.representative.national_id)
        out["representative_valid_until"] = (
            spec.representative.valid_until.isoformat() if spec.representative.valid_until else None
        )
    if spec.cash_reason:
        out["cash_reason"] = "recorded"
    return out


async def current_methods(
    uow: IntakeUnitOfWork, beneficiary_ids: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """The current method of each of these people, locked for the change that follows."""
    ids = list(set(beneficiary_ids))
    if not ids:
        return {}
    return await repository.current_methods_for_update(uow, ids)


async def apply_method_changes(
    uow: IntakeUnitOfWork,
    changes: list[MethodChange],
    current: dict[str, Mapping[str, Any]] | None = None,
) -> list[MethodOutcome]:
    """Record each change unless it repeats the beneficiary's current method (then nothing changes)."""
    if len({c.beneficiary_id for c in changes}) != len(changes):
        raise ValueError("one change per beneficiary in a batch")
    if current is None:
        current = await current_methods(uow, [c.beneficiary_id for c in changes])
    superseded: list[str] = []
    new_rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    outcomes: list[MethodOutcome] = []
    for change in changes:
        spec = change.spec
        existing = current.get(change.beneficiary_id)
        if existing is not None and spec_of_row(existing) == spec:
            outcomes.append(
                MethodOutcome(change.beneficiary_id, existing["id"], False, existing["status"])
            )
            continue
        method_id = str(uuid.uuid4())
        status = spec.initial_status()
        holder = spec.holder_name(change.beneficiary_name)
        rep = spec.representative
        if existing is not None:
            superseded.append(existing["id"])
            history.append(
                _history(
                    uow,
                    change.beneficiary_id,
                    existing["id"],
                    "SUPERSEDED",
                    existing["status"],
                    {"replaced_by": method_id},
                    change.channel,
                )
            )
        new_rows.append(
            {
                "id": method_id,
                "beneficiary_id": change.beneficiary_id,
                "kind": spec.kind,
                "bank_bin": spec.bank_bin,
                "account_number": spec.account_number,
                "account_holder_name": holder,
                "rep_national_id": rep.national_id if rep else None,
                "rep_full_name": rep.full_name if rep else None,
                "rep_relationship": rep.relationship if rep else None,
                "rep_power_of_attorney_ref": rep.power_of_attorney_ref if rep else None,
                "rep_valid_from": rep.valid_from if rep else None,
                "rep_valid_until": rep.valid_until if rep else None,
                "cash_reason": spec.cash_reason,
                "status": status,
                "status_reason": None,
                "channel": change.channel,
                "client_id": uow.actor,
                "created_at": uow.now,
                "status_changed_at": uow.now,
                "is_current": True,
                "superseded_at": None,
            }
        )
        detail = masked_spec(spec)
        history.append(
            _history(
                uow, change.beneficiary_id, method_id, "CREATED", status, detail, change.channel
            )
        )
        uow.emit(
            PaymentMethodChanged(
                beneficiary_id=change.beneficiary_id,
                method_id=method_id,
                method=spec.kind,
                bank_bin=spec.bank_bin,
                account_number=spec.account_number,
                account_holder_name=holder,
                representative=None
                if rep is None
                else Representative(  # the rest stays in intake
                    full_name=rep.full_name,
                    valid_from=rep.valid_from,
                    valid_until=rep.valid_until,
                ),
                cash_reason=spec.cash_reason,
                status=status,
                channel=change.channel,
                changed_at=uow.now,
            )
        )
        uow.audit(
            "payment_method.changed",
            "beneficiary",
            change.beneficiary_id,
            {
                **detail,
                "method_id": method_id,
                "status": status,
                "channel": change.channel,
                "previous_method_id": existing["id"] if existing is not None else None,
            },
        )
        outcomes.append(MethodOutcome(change.beneficiary_id, method_id, True, status))
    await repository.supersede_methods(uow, superseded, uow.now)
    await repository.insert_methods(uow, new_rows)
    await repository.insert_method_history(uow, history)
    return outcomes


def _history(
    uow: IntakeUnitOfWork,
    beneficiary_id: str,
    method_id: str,
    change: str,
    status: str,
    detail: dict[str, Any] | None,
    channel: str,
) -> dict[str, Any]:
    return {
        "beneficiary_id": beneficiary_id,
        "method_id": method_id,
        "change": change,
        "status": status,
        "detail": detail,
        "channel": channel,
        "client_id": uow.actor,
        "at": uow.now,
    }


class UnknownMethod(LookupError):
    pass


async def record_verification(
    uow: IntakeUnitOfWork,
    beneficiary_id: str,
    method_id: str | None,
    outcome: str,
    reason: str | None,
) -> bool:
    """Apply payout's verification result (outcome VERIFIED, FAILED or FLAGGED) to a method.

    Returns False when the method already has that outcome (nothing changes, nothing is emitted)."""
    row = await repository.method_for_update(uow, beneficiary_id, method_id)
    if row is None:
        raise UnknownMethod(
            f"no payment method {method_id or '(current)'} for beneficiary {beneficiary_id}"
        )
    if row.kind == pm.CASH_POST_OFFICE and outcome == pm.VERIFIED:
        return False
    if row.status == outcome and row.status_reason == reason:
        return False
    await repository.set_method_status(
        uow, row.id, {"status": outcome, "status_reason": reason, "status_changed_at": uow.now}
    )
    await repository.insert_method_history(
        uow,
        [
            _history(
                uow,
                beneficiary_id,
                row.id,
                outcome,
                outcome,
                {"reason": reason} if reason else None,
                "BANK",
            )
        ],
    )
    result = pm.VERIFIED if outcome == pm.VERIFIED else pm.FAILED
    uow.emit(
        PaymentMethodVerificationRecorded(
            beneficiary_id=beneficiary_id,
            method_id=row.id,
            result=result,
            reason=reason,
            recorded_at=uow.now,
        )
    )
    uow.audit(
        "payment_method.verification_recorded",
        "beneficiary",
        beneficiary_id,
        {"method_id": row.id, "status": outcome, "previous_status": row.status, "reason": reason},
    )
    return True
