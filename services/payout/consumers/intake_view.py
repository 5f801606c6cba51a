"""`payout.intake-view`: keeps the payout's view of beneficiaries, entitlements and payment
methods from intake's beneficiary topic."""

from __future__ import annotations

from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.service_layer import intake_view
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
from shared.uow import UnitOfWork, joining

CONSUMER_NAME = "payout.intake-view"

_GATHERED = "payout.intake-view.changes"  # the session's changes not applied yet


def intake_view_consumer(
    runtime: Runtime, batch_size: int = 500, name: str = CONSUMER_NAME
) -> ConsumerRunner:
    """`name` is also the consumer group; only a test gives another one. Registrations, grants
    and method changes are gathered and applied set-based when the batch ends (or before a stop,
    which must see them): a few statements per batch instead of several per event."""

    def unit(session: AsyncSession) -> UnitOfWork:
        return joining(session, runtime.outbox, name)

    async def gather(session: AsyncSession, delivery: Delivery) -> None:
        session.info.setdefault(_GATHERED, []).append(delivery.payload)

    async def apply_gathered(session: AsyncSession) -> None:
        changes = session.info.pop(_GATHERED, [])
        if changes:
            uow = unit(session)
            await intake_view.apply_changes(uow, changes)
            await uow.flush()

    async def stop(session: AsyncSession, delivery: Delivery) -> None:
        await apply_gathered(session)
        uow = unit(session)
        await intake_view.stop_entitlement(uow, cast(EntitlementStopped, delivery.payload))
        await uow.flush()

    return ConsumerRunner(
        name=name,
        topics=[BENEFICIARY_TOPIC],
        handlers={
            **{
                CONTRACT_BY_MODEL[model].type: gather
                for model in (
                    BeneficiaryRegistered,
                    BeneficiaryRegisteredV1,  # written before v2: read alike
                    EntitlementGranted,
                    PaymentMethodChanged,
                    PaymentMethodChangedV1,
                )
            },
            CONTRACT_BY_MODEL[EntitlementStopped].type: stop,
        },
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=batch_size,
        ignore_types=[CONTRACT_BY_MODEL[PaymentMethodVerificationRecorded].type],
        finish_batch=apply_gathered,
    )
