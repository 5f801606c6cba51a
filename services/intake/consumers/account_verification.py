"""Payout's account-verification results: mark the method VERIFIED, FAILED or FLAGGED, record
the history and emit `PaymentMethodVerificationRecorded`. Each event applies once (inbox)."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import payment_methods as pm
from services.intake.service_layer.common import Context
from services.intake.service_layer.payment_methods import UnknownMethod, record_verification
from shared.db import is_sqlite
from shared.events.contracts import (
    ACCOUNT_VERIFICATION_TOPIC,
    CONTRACT_BY_MODEL,
    AccountFlagged,
    AccountVerificationFailed,
    AccountVerified,
)
from shared.inbox import ConsumerRunner, Delivery, Poison
from shared.runtime import Runtime

CONSUMER = "intake.account-verification"
ACTOR = "payout"  # the audit trail names the service whose event caused the change


def _context(session: AsyncSession, runtime: Runtime) -> Context:
    return Context(session, runtime.outbox, ACTOR, datetime.now(UTC), not is_sqlite(runtime.engine))


def handlers(runtime: Runtime):
    async def apply(session: AsyncSession, beneficiary_id: str, method_id: str | None, outcome: str,
                    reason: str | None) -> None:
        ctx = _context(session, runtime)
        try:
            await record_verification(ctx, beneficiary_id, method_id, outcome, reason)
        except UnknownMethod as exc:
            raise Poison("unknown_method", str(exc)) from exc
        await ctx.flush()

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
        await apply(session, event.beneficiary_id, event.method_id, pm.FLAGGED, f"FLAGGED:{event.reason_code}"[:200])

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
