"""The payout's own view of intake's world, kept from intake's events: beneficiaries,
entitlements with their schedules and stops, and each beneficiary's current payment method.

Handlers run on the consumer's unit of work (with the inbox row); they never call a bank:
a new bank account only gets a PENDING verification row that the verification worker takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import RowMapping

from services.payout.adapters.repository import intake_view as repository
from services.payout.domain import model
from services.payout.service_layer.cycles import release_holds, stop_entitlements
from shared.clock import as_utc
from shared.events.contracts import (
    AccountVerificationFailed,
    BeneficiaryRegistered,
    EntitlementGranted,
    EntitlementStopped,
    PaymentMethodChanged,
)
from shared.periods import last_scheduled_period
from shared.uow import UnitOfWork

IntakeChange = BeneficiaryRegistered | EntitlementGranted | PaymentMethodChanged


async def apply_changes(uow: UnitOfWork, changes: Sequence[IntakeChange]) -> None:
    """Registrations, grants and method changes in the order intake made them, set-based: the
    changes are cut into rounds in which no beneficiary has two changes that depend on each
    other's order, and each round is a few statements, whatever its size."""
    for round_ in _rounds(changes):
        await _register(uow, [c for c in round_ if isinstance(c, BeneficiaryRegistered)])
        await _grant(uow, [c for c in round_ if isinstance(c, EntitlementGranted)])
        await _change_methods(uow, [c for c in round_ if isinstance(c, PaymentMethodChanged)])


def _rounds(changes: Sequence[IntakeChange]) -> list[list[IntakeChange]]:
    """A round applies registrations, then grants, then method changes: a beneficiary's changes
    stay in one round only while they come in that order (one registration, one method change,
    grants of distinct entitlements), so the round's result is the sequential one."""
    rounds: list[list[IntakeChange]] = [[]]
    last_rank: dict[str, int] = {}
    granted: set[str] = set()
    for change in changes:
        rank = _rank(change)
        before = last_rank.get(change.beneficiary_id, -1)
        repeated_grant = isinstance(change, EntitlementGranted) and (
            change.entitlement_id in granted
        )
        if rank < before or (rank == before and rank != 1) or repeated_grant:
            rounds.append([])
            last_rank.clear()
            granted.clear()
        rounds[-1].append(change)
        last_rank[change.beneficiary_id] = rank
        if isinstance(change, EntitlementGranted):
            granted.add(change.entitlement_id)
    return [r for r in rounds if r]


def _rank(change: IntakeChange) -> int:
    if isinstance(change, BeneficiaryRegistered):
        return 0
    return 1 if isinstance(change, EntitlementGranted) else 2


async def _register(uow: UnitOfWork, events: Sequence[BeneficiaryRegistered]) -> None:
    await repository.upsert_beneficiaries(
        uow,
        [
            {
                "beneficiary_id": event.beneficiary_id,
                "full_name": event.full_name,
                "commune_code": event.commune_code,
                "commune_list_date": event.commune_list_date,
                "registered_at": event.registered_at,
                "updated_at": uow.now,
            }
            for event in events
        ],
    )


async def _grant(uow: UnitOfWork, events: Sequence[EntitlementGranted]) -> None:
    """Entitlements as first granted; a redelivery changes nothing."""
    await repository.insert_entitlements(
        uow,
        [
            {
                "entitlement_id": event.entitlement_id,
                "beneficiary_id": event.beneficiary_id,
                "scheme": event.scheme,
                "agency": event.agency,
                "decision_number": event.decision_number,
                "amount": event.amount_per_installment,
                "schedule_kind": event.schedule.kind,
                "start_period": event.schedule.start_period,
                "installments": event.schedule.installments,
                "end_period": last_scheduled_period(
                    event.schedule.kind, event.schedule.start_period, event.schedule.installments
                ),
                "commune_code": event.commune_code,
                "commune_list_date": event.commune_list_date,
                "granted_at": event.granted_at,
                "updated_at": uow.now,
            }
            for event in events
        ],
    )


async def _change_methods(uow: UnitOfWork, events: Sequence[PaymentMethodChanged]) -> None:
    """Each beneficiary's new current method (at most one change each here): the same method
    again or an older change than the one held changes nothing; an account waits for the bank
    to confirm its holder (a PENDING verification), cash is usable at once."""
    if not events:
        return
    current = await repository.current_methods(uow, [e.beneficiary_id for e in events])
    taken = [e for e in events if _newer(current.get(e.beneficiary_id), e)]
    if not taken:
        return
    beneficiary_ids = [e.beneficiary_id for e in taken]
    await repository.supersede_verifications(uow, beneficiary_ids)
    await repository.upsert_methods(
        uow,
        [
            _method_values(e, e.method == model.CASH_POST_OFFICE, uow.now)
            | {"beneficiary_id": e.beneficiary_id}
            for e in taken
        ],
    )
    accounts = [e for e in taken if e.method != model.CASH_POST_OFFICE]
    for event in accounts:
        if not event.bank_bin or not event.account_number:
            await _fail_at_once(uow, event, "NO_SUCH_ACCOUNT")
    to_verify = [e for e in accounts if e.bank_bin and e.account_number]
    names = await repository.beneficiary_names(uow, [e.beneficiary_id for e in to_verify])
    await repository.request_verifications(
        uow,
        [
            {
                "method_id": e.method_id,
                "beneficiary_id": e.beneficiary_id,
                "bank_bin": e.bank_bin,
                "account_number": e.account_number,
                "expected_name": _expected_holder(e, names.get(e.beneficiary_id)),
            }
            for e in to_verify
        ],
    )
    # Cash needs no name inquiry: waiting installments can go; for accounts, hold reasons
    # are refreshed.
    await release_holds(uow, beneficiary_ids)


def _newer(current: RowMapping | None, event: PaymentMethodChanged) -> bool:
    if current is None:
        return True
    if current["method_id"] == event.method_id:
        return False  # the same method again (a re-announcement): nothing to verify anew
    return not _aware(current["changed_at"]) > _aware(event.changed_at)  # not an older change


async def stop_entitlement(uow: UnitOfWork, event: EntitlementStopped) -> None:
    """No installment from the effective period on; unsent ones already made are cancelled."""
    await stop_entitlements(
        uow,
        entitlement_ids=[event.entitlement_id],
        from_period=event.effective_period,
        reason=f"ENTITLEMENT_STOPPED_{event.reason}",
    )


def _method_values(event: PaymentMethodChanged, cash: bool, now: datetime) -> dict[str, object]:
    """The payment-method row the change makes: cash is usable at once, an account once the
    bank confirms its holder."""
    representative = event.representative
    return {
        "method_id": event.method_id,
        "method": event.method,
        "bank_bin": None if cash else event.bank_bin,
        "account_number": None if cash else event.account_number,
        "account_holder_name": event.account_holder_name,
        "verified_name": None,
        "representative_name": representative.full_name if representative else None,
        "representative_valid_from": representative.valid_from if representative else None,
        "representative_valid_until": representative.valid_until if representative else None,
        "cash_reason": event.cash_reason,
        "status": model.METHOD_VERIFIED if cash else model.METHOD_PENDING,
        "status_reason": None,
        "changed_at": event.changed_at,
        "verified_at": now if cash else None,
        "updated_at": now,
    }


def _expected_holder(event: PaymentMethodChanged, beneficiary_name: str | None) -> str:
    """Whose name the account must carry: the representative's for an authorised account,
    else the beneficiary's."""
    if event.method == model.AUTHORISED_ACCOUNT and event.representative is not None:
        return event.representative.full_name
    return beneficiary_name or event.account_holder_name or ""


async def _fail_at_once(uow: UnitOfWork, event: PaymentMethodChanged, reason: str) -> None:
    await repository.fail_method(uow, event.method_id, reason)
    uow.emit(
        AccountVerificationFailed(
            beneficiary_id=event.beneficiary_id,
            method_id=event.method_id,
            reason=reason,
            failed_at=uow.now,
        )
    )


def _aware(moment: datetime) -> datetime:
    aware = as_utc(moment)
    assert aware is not None  # changed_at is NOT NULL
    return aware
