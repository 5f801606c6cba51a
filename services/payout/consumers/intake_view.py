"""`payout.intake-view`: keeps the payout's view of beneficiaries, entitlements and payment
methods from intake's beneficiary topic."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.service_layer import intake_view
from services.payout.service_layer.common import utcnow
from shared.events.contracts import (
    BENEFICIARY_TOPIC,
    CONTRACT_BY_MODEL,
    BeneficiaryRegistered,
    BeneficiaryRegisteredV1,
    EntitlementGranted,
    EntitlementStopped,
    PaymentMethodChanged,
    PaymentMethodChangedV1,
    PaymentMethodVerificationRecorded,
)
from shared.inbox import ConsumerRunner, Delivery
from shared.runtime import Runtime

CONSUMER_NAME = "payout.intake-view"


def intake_view_consumer(
    runtime: Runtime, batch_size: int = 500, name: str = CONSUMER_NAME
) -> ConsumerRunner:
    """`name` is also the consumer group; only a test gives another one."""
    outbox = runtime.outbox

    async def registered(session: AsyncSession, delivery: Delivery) -> None:
        await intake_view.register_beneficiary(session, delivery.payload, utcnow())  # type: ignore[arg-type]

    async def granted(session: AsyncSession, delivery: Delivery) -> None:
        await intake_view.grant_entitlement(session, delivery.payload, utcnow())  # type: ignore[arg-type]

    async def stopped(session: AsyncSession, delivery: Delivery) -> None:
        await intake_view.stop_entitlement(session, outbox, delivery.payload, utcnow())  # type: ignore[arg-type]

    async def method_changed(session: AsyncSession, delivery: Delivery) -> None:
        await intake_view.change_payment_method(session, outbox, delivery.payload, utcnow())  # type: ignore[arg-type]

    return ConsumerRunner(
        name=name,
        topics=[BENEFICIARY_TOPIC],
        handlers={
            CONTRACT_BY_MODEL[BeneficiaryRegistered].type: registered,
            CONTRACT_BY_MODEL[BeneficiaryRegisteredV1].type: registered,  # written before v2: read alike
            CONTRACT_BY_MODEL[EntitlementGranted].type: granted,
            CONTRACT_BY_MODEL[EntitlementStopped].type: stopped,
            CONTRACT_BY_MODEL[PaymentMethodChanged].type: method_changed,
            CONTRACT_BY_MODEL[PaymentMethodChangedV1].type: method_changed,
        },
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=batch_size,
        ignore_types=[CONTRACT_BY_MODEL[PaymentMethodVerificationRecorded].type],
    )
