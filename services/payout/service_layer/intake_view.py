"""The payout's own view of intake's world, kept from intake's events: beneficiaries,
entitlements with their schedules and stops, and each beneficiary's current payment method.

Handlers run on the consumer's unit of work (with the inbox row); they never call a bank:
a new bank account only gets a PENDING verification row that the verification worker takes.
"""

from __future__ import annotations

from datetime import datetime

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


async def register_beneficiary(uow: UnitOfWork, event: BeneficiaryRegistered) -> None:
    await repository.upsert_beneficiary(
        uow,
        event.beneficiary_id,
        {
            "full_name": event.full_name,
            "commune_code": event.commune_code,
            "commune_list_date": event.commune_list_date,
            "registered_at": event.registered_at,
            "updated_at": uow.now,
        },
    )


async def grant_entitlement(uow: UnitOfWork, event: EntitlementGranted) -> None:
    schedule = event.schedule
    await repository.insert_entitlement(
        uow,
        {
            "entitlement_id": event.entitlement_id,
            "beneficiary_id": event.beneficiary_id,
            "scheme": event.scheme,
            "agency": event.agency,
            "decision_number": event.decision_number,
            "amount": event.amount_per_installment,
            "schedule_kind": schedule.kind,
            "start_period": schedule.start_period,
            "installments": schedule.installments,
            "end_period": last_scheduled_period(
                schedule.kind, schedule.start_period, schedule.installments
            ),
            "commune_code": event.commune_code,
            "commune_list_date": event.commune_list_date,
            "granted_at": event.granted_at,
            "updated_at": uow.now,
        },
    )


async def stop_entitlement(uow: UnitOfWork, event: EntitlementStopped) -> None:
    """No installment from the effective period on; unsent ones already made are cancelled."""
    await stop_entitlements(
        uow,
        entitlement_ids=[event.entitlement_id],
        from_period=event.effective_period,
        reason=f"ENTITLEMENT_STOPPED_{event.reason}",
    )


async def change_payment_method(uow: UnitOfWork, event: PaymentMethodChanged) -> None:
    current = await repository.current_method(uow, event.beneficiary_id)
    if current is not None:
        if current["method_id"] == event.method_id:
            return  # the same method again (a re-announcement): nothing to verify anew
        if _aware(current["changed_at"]) > _aware(event.changed_at):
            return  # an older change than the one we hold
    await repository.supersede_verifications(uow, event.beneficiary_id)
    cash = event.method == model.CASH_POST_OFFICE
    await repository.upsert_method(uow, event.beneficiary_id, _method_values(event, cash, uow.now))
    if cash:
        # The post office needs no name inquiry: waiting installments can go.
        await release_holds(uow, [event.beneficiary_id])
        return
    if not event.bank_bin or not event.account_number:
        await _fail_at_once(uow, event, "NO_SUCH_ACCOUNT")
        return
    await repository.request_verification(
        uow,
        {
            "method_id": event.method_id,
            "beneficiary_id": event.beneficiary_id,
            "bank_bin": event.bank_bin,
            "account_number": event.account_number,
            "expected_name": await _expected_holder(uow, event),
        },
    )
    await release_holds(uow, [event.beneficiary_id])  # refreshes hold reasons


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


async def _expected_holder(uow: UnitOfWork, event: PaymentMethodChanged) -> str:
    """Whose name the account must carry: the representative's for an authorised account,
    else the beneficiary's."""
    if event.method == model.AUTHORISED_ACCOUNT and event.representative is not None:
        return event.representative.full_name
    name = await repository.beneficiary_name(uow, event.beneficiary_id)
    return name or event.account_holder_name or ""


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
