"""The payout's own view of intake's world, kept from intake's events: beneficiaries,
entitlements with their schedules and stops, and each beneficiary's current payment method.

Handlers run inside the consumer's transaction (with the inbox row); they never call a bank:
a new bank account only gets a PENDING verification row that the verification worker takes.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.adapters.orm import beneficiaries, entitlements, payment_methods, verifications
from services.payout.domain import model
from services.payout.domain.periods import end_period
from services.payout.service_layer.common import as_utc, upsert
from services.payout.service_layer.cycles import release_holds, stop_entitlements
from shared.events.contracts import (
    AccountVerificationFailed,
    BeneficiaryRegistered,
    EntitlementGranted,
    EntitlementStopped,
    PaymentMethodChanged,
)
from shared.outbox import Outbox


async def register_beneficiary(session: AsyncSession, event: BeneficiaryRegistered, now: datetime) -> None:
    values = {
        "full_name": event.full_name,
        "commune_code": event.commune_code,
        "commune_list_date": event.commune_list_date,
        "registered_at": event.registered_at,
        "updated_at": now,
    }
    await session.execute(
        upsert(session, beneficiaries)
        .values(beneficiary_id=event.beneficiary_id, **values)
        .on_conflict_do_update(index_elements=["beneficiary_id"], set_=values)
    )


async def grant_entitlement(session: AsyncSession, event: EntitlementGranted, now: datetime) -> None:
    schedule = event.schedule
    await session.execute(
        upsert(session, entitlements)
        .values(
            entitlement_id=event.entitlement_id,
            beneficiary_id=event.beneficiary_id,
            scheme=event.scheme,
            agency=event.agency,
            decision_number=event.decision_number,
            amount=event.amount_per_installment,
            schedule_kind=schedule.kind,
            start_period=schedule.start_period,
            installments=schedule.installments,
            end_period=end_period(schedule.kind, schedule.start_period, schedule.installments),
            commune_code=event.commune_code,
            commune_list_date=event.commune_list_date,
            granted_at=event.granted_at,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["entitlement_id"])
    )


async def stop_entitlement(
    session: AsyncSession, outbox: Outbox, event: EntitlementStopped, now: datetime
) -> None:
    """No installment from the effective period on; unsent ones already made are cancelled."""
    await stop_entitlements(
        session, outbox, entitlement_ids=[event.entitlement_id], from_period=event.effective_period,
        reason=f"ENTITLEMENT_STOPPED_{event.reason}", now=now,
    )


async def change_payment_method(
    session: AsyncSession, outbox: Outbox, event: PaymentMethodChanged, now: datetime
) -> None:
    current = (
        await session.execute(
            select(payment_methods).where(payment_methods.c.beneficiary_id == event.beneficiary_id)
        )
    ).mappings().first()
    if current is not None:
        if current["method_id"] == event.method_id:
            return  # the same method again (a re-announcement): nothing to verify anew
        if _aware(current["changed_at"]) > _aware(event.changed_at):
            return  # an older change than the one we hold
    # Verifications of the method being replaced no longer matter.
    await session.execute(
        update(verifications)
        .where(
            verifications.c.beneficiary_id == event.beneficiary_id,
            verifications.c.state.in_(["PENDING", "IN_PROGRESS"]),
        )
        .values(state="SUPERSEDED", completed_at=now)
    )
    representative = event.representative
    cash = event.method == model.CASH_POST_OFFICE
    values = {
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
    await session.execute(
        upsert(session, payment_methods)
        .values(beneficiary_id=event.beneficiary_id, **values)
        .on_conflict_do_update(index_elements=["beneficiary_id"], set_=values)
    )
    if cash:
        # The post office needs no name inquiry: waiting installments can go.
        await release_holds(session, outbox, [event.beneficiary_id], now)
        return
    if not event.bank_bin or not event.account_number:
        await _fail_at_once(session, outbox, event, "NO_SUCH_ACCOUNT", now)
        return
    expected = await _expected_holder(session, event)
    await session.execute(
        upsert(session, verifications)
        .values(
            method_id=event.method_id,
            beneficiary_id=event.beneficiary_id,
            bank_bin=event.bank_bin,
            account_number=event.account_number,
            expected_name=expected,
            state="PENDING",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["method_id"])
    )
    await release_holds(session, outbox, [event.beneficiary_id], now)  # refreshes hold reasons


async def _expected_holder(session: AsyncSession, event: PaymentMethodChanged) -> str:
    """Whose name the account must carry: the representative's for an authorised account,
    else the beneficiary's."""
    if event.method == model.AUTHORISED_ACCOUNT and event.representative is not None:
        return event.representative.full_name
    name = (
        await session.execute(
            select(beneficiaries.c.full_name).where(beneficiaries.c.beneficiary_id == event.beneficiary_id)
        )
    ).scalar()
    return name or event.account_holder_name or ""


async def _fail_at_once(
    session: AsyncSession, outbox: Outbox, event: PaymentMethodChanged, reason: str, now: datetime
) -> None:
    await session.execute(
        update(payment_methods)
        .where(payment_methods.c.method_id == event.method_id)
        .values(status=model.METHOD_FAILED, status_reason=reason, updated_at=now)
    )
    await outbox.add(
        session,
        [AccountVerificationFailed(beneficiary_id=event.beneficiary_id, method_id=event.method_id,
                                   reason=reason, failed_at=now)],
    )


def _aware(moment: datetime) -> datetime:
    return as_utc(moment)  # type: ignore[return-value]
