"""Intake's identity revalidation (`RevalidationCompleted`, in parts per period): kept, and the
holds it names applied to the period's cycle when it exists. Each event applies once (inbox);
a part received again changes nothing."""

from __future__ import annotations

from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.service_layer.revalidation import record_revalidation
from shared.events.contracts import CONTRACT_BY_MODEL, REVALIDATION_TOPIC, RevalidationCompleted
from shared.inbox import ConsumerRunner, Delivery
from shared.runtime import Runtime
from shared.uow import UnitOfWork, joining

CONSUMER_NAME = "payout.revalidation"


def revalidation_consumer(
    runtime: Runtime, batch_size: int = 500, name: str = CONSUMER_NAME
) -> ConsumerRunner:
    async def completed(session: AsyncSession, delivery: Delivery) -> None:
        uow: UnitOfWork = joining(session, runtime.outbox, name)
        await record_revalidation(uow, cast(RevalidationCompleted, delivery.payload))
        await uow.flush()

    return ConsumerRunner(
        name=name,
        topics=[REVALIDATION_TOPIC],
        handlers={CONTRACT_BY_MODEL[RevalidationCompleted].type: completed},
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=batch_size,
    )
