"""Payout's account-verification results: mark the method VERIFIED, FAILED or FLAGGED, record
the history and emit `PaymentMethodVerificationRecorded`. Each event applies once (inbox)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import payment_methods as pm
from services.intake.service_layer.common import IntakeUnitOfWork
from services.intake.service_layer.payment_methods import UnknownMethod, record_verification
from shared.events.contracts import (
    ACCOUNT_VERIFICATION_TOPIC,
    CONTRACT_BY_MODEL,
    AccountFlagged,
    AccountVerificationFailed,
    AccountVerified,
)
from shared.inbox import ConsumerRunner, Delivery, Poison
from shared.runtime import Runtime
from shared.uow import joining

CONSUMER = "intake.account-verification"
ACTOR = "payout"  # the audit trail names the service whose event caused the change


def _unit_of_work(session: AsyncSession, runtime: Runtime) -> IntakeUnitOfWork:
    """The unit of work of one delivery, on the consumer batch's transaction: the runner opens it
    (with the inbox key of the event) and commits it."""
    return joining(session, runtime.outbox, ACTOR, kind=IntakeUnitOfWork)


def handlers(runtime: Runtime):
    async def apply(
        session: AsyncSession,
        beneficiary_id: str,
        method_id: str | None,
        outcome: str,
        reason: str | None,
    ) -> None:
        uow = _unit_of_work(session, runtime)
        try:
            await record_verification(uow, beneficiary_id, method_id, outcome, reason)
        except UnknownMethod as exc:
            raise Poison("unknown_method", str(exc)) from exc
        await uow.flush()

    async def verified(session: AsyncSession, delivery: Delivery) -> None:
        event = delivery.payload
        assert isinstance(event, AccountVerified)
        await apply(session, event.beneficiary_id, event.method_id, pm.VERIFIED, None)

    async def failed(session: AsyncSession, delivery: Delivery) -> None:
        event = delivery.payload
        assert isinstance(event, AccountVerificationFailed)
        await apply(session, event.beneficiary_id, event.method_id, pm.FAILED, event.reason)

    async def flagged(session: AsyncSession, delivery: Delivery) -> None:
        event = delivery.payload
        assert isinstance(event, AccountFlagged)
        await apply(
            session,
            event.beneficiary_id,
            event.method_id,
            pm.FLAGGED,
            f"FLAGGED:{event.reason_code}"[:200],
        )

    return {
        CONTRACT_BY_MODEL[AccountVerified].type: verified,
        CONTRACT_BY_MODEL[AccountVerificationFailed].type: failed,
        CONTRACT_BY_MODEL[AccountFlagged].type: flagged,
    }


def account_verification_consumer(runtime: Runtime, name: str = CONSUMER) -> ConsumerRunner:
    return ConsumerRunner(
        name=name,
        topics=[ACCOUNT_VERIFICATION_TOPIC],
        handlers=handlers(runtime),
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=runtime.settings.consumer_batch_size,
    )
