"""Payout's cycle events: a `CycleOpened` records a request to revalidate the identities of
everyone intake pays in the period, in the consumer batch's transaction (the pass runs in the
worker). Each event applies once (inbox); a second one for the same period adds nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.service_layer.common import IntakeUnitOfWork
from services.intake.service_layer.revalidation import request_revalidation
from shared.events.contracts import (
    CONTRACT_BY_MODEL,
    CYCLE_TOPIC,
    CycleApproved,
    CycleOpened,
    EnvelopeSet,
)
from shared.inbox import ConsumerRunner, Delivery
from shared.runtime import Runtime
from shared.uow import joining

CONSUMER = "intake.revalidation"
ACTOR = "payout"  # the audit trail names the service whose event caused the change


def handlers(runtime: Runtime):
    async def opened(session: AsyncSession, delivery: Delivery) -> None:
        event = delivery.payload
        assert isinstance(event, CycleOpened)
        uow = joining(session, runtime.outbox, ACTOR, kind=IntakeUnitOfWork)
        await request_revalidation(uow, event.period, event.opened_at)
        await uow.flush()

    return {CONTRACT_BY_MODEL[CycleOpened].type: opened}


def cycle_consumer(runtime: Runtime, name: str = CONSUMER) -> ConsumerRunner:
    return ConsumerRunner(
        name=name,
        topics=[CYCLE_TOPIC],
        handlers=handlers(runtime),
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=runtime.settings.consumer_batch_size,
        # Approvals and envelopes are payout's own business.
        ignore_types=[CONTRACT_BY_MODEL[m].type for m in (CycleApproved, EnvelopeSet)],
    )
