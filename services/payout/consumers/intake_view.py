"""`payout.intake-view`: keeps the payout's view of beneficiaries, entitlements and payment
methods from intake's beneficiary topic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

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
from shared.inbox import Handler as ConsumerHandler
from shared.outbox import Outbox
from shared.runtime import Runtime
from shared.uow import UnitOfWork, joining

CONSUMER_NAME = "payout.intake-view"

ViewHandler = Callable[[UnitOfWork, Any], Awaitable[None]]  # (uow, the event) -> None


def on_consumer_transaction(outbox: Outbox, actor: str, handle: ViewHandler) -> ConsumerHandler:
    """A consumer handler: `handle` runs on a unit of work over the consumer's transaction (the
    one that records the inbox row, committed by the consumer), its events flushed into it."""

    async def apply(session: AsyncSession, delivery: Delivery) -> None:
        uow: UnitOfWork = joining(session, outbox, actor)
        await handle(uow, delivery.payload)
        await uow.flush()

    return apply


def intake_view_consumer(
    runtime: Runtime, batch_size: int = 500, name: str = CONSUMER_NAME
) -> ConsumerRunner:
    """`name` is also the consumer group; only a test gives another one."""

    def handler(handle: ViewHandler) -> ConsumerHandler:
        return on_consumer_transaction(runtime.outbox, name, handle)

    registered = handler(intake_view.register_beneficiary)
    method_changed = handler(intake_view.change_payment_method)
    return ConsumerRunner(
        name=name,
        topics=[BENEFICIARY_TOPIC],
        handlers={
            CONTRACT_BY_MODEL[BeneficiaryRegistered].type: registered,
            CONTRACT_BY_MODEL[
                BeneficiaryRegisteredV1
            ].type: registered,  # written before v2: read alike
            CONTRACT_BY_MODEL[EntitlementGranted].type: handler(intake_view.grant_entitlement),
            CONTRACT_BY_MODEL[EntitlementStopped].type: handler(intake_view.stop_entitlement),
            CONTRACT_BY_MODEL[PaymentMethodChanged].type: method_changed,
            CONTRACT_BY_MODEL[PaymentMethodChangedV1].type: method_changed,
        },
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=batch_size,
        ignore_types=[CONTRACT_BY_MODEL[PaymentMethodVerificationRecorded].type],
    )
