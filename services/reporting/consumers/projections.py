"""The projection consumer: claims, payments and funds envelopes into the read models.

The shared inbox (`ConsumerRunner`) applies a poll's events in one transaction and records their
ids; our handlers only buffer what each event means, and the whole buffer is written in that same
transaction, just before it commits, with a few set-based statements. A redelivered event is
skipped by the inbox; a re-published fact (same installment or claim, new event id) is absorbed by
the facts tables.

Generations: the consumer group (and inbox name) carries the projection generation. A rebuild
starts generation N+1 from the beginning of the topics; a worker still on N notices it (before each
batch, and inside the transaction) and moves to N+1 once the rebuild has caught up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.reporting.adapters.repository import ControlRepository, ProjectionRepository
from services.reporting.domain.control import ControlState
from services.reporting.domain.envelopes import ApprovedTotal, EnvelopeKey, EnvelopeSetEvent
from services.reporting.domain.model import (
    CANCELLED,
    FAILED,
    FAILED_PERMANENT,
    PAID_CASH,
    RETURNED,
    SCHEDULED,
    SETTLED,
    SUBMITTED,
    ClaimDecidedEvent,
    ClaimReceivedEvent,
    PaymentEvent,
)
from services.reporting.service_layer.projector import Batch, Superseded, apply_batch
from shared.db import is_postgres
from shared.events.contracts import (
    CLAIM_TOPIC,
    CONTRACT_BY_MODEL,
    CYCLE_TOPIC,
    PAYMENT_TOPIC,
    ClaimDecided,
    ClaimReceived,
    CycleApproved,
    CycleOpened,
    EnvelopeSet,
    InstallmentCancelled,
    InstallmentScheduled,
    PaymentFacts,
    PaymentFailed,
    PaymentPaidInCash,
    PaymentReturned,
    PaymentSettled,
    PaymentSubmitted,
)
from shared.inbox import ConsumerRunner, Delivery, next_offsets
from shared.periods import period_of
from shared.runtime import Runtime
from shared.waiting import sleep_or_stop

log = logging.getLogger(__name__)

TOPICS = (CLAIM_TOPIC, PAYMENT_TOPIC, CYCLE_TOPIC)
GROUP = "reporting.projections"
POLL_MS = 100
CONTROL_CHECK_SECONDS = 1.0
_BUFFER = "reporting.projection-batch"


def group_name(generation: int) -> str:
    """Consumer group and inbox name of a projection generation."""
    return GROUP if generation == 1 else f"{GROUP}.{generation}"


def _payment(payload: PaymentFacts, state: str, at: datetime) -> PaymentEvent:
    return PaymentEvent(
        installment_id=payload.installment_id,
        beneficiary_id=payload.beneficiary_id,
        period=payload.period,
        amount=payload.amount,
        scheme=payload.scheme,
        agency=payload.agency,
        channel=payload.channel,
        commune_code=payload.commune_code,
        list_date=payload.commune_list_date,
        state=state,
        at=at,
    )


DomainEvent = (
    PaymentEvent | ClaimReceivedEvent | ClaimDecidedEvent | EnvelopeSetEvent | list[ApprovedTotal]
)


def to_domain(payload: object) -> DomainEvent:
    """What a contract payload means to the read models."""
    match payload:
        case EnvelopeSet():
            return EnvelopeSetEvent(
                EnvelopeKey(payload.period, payload.agency, payload.scheme),
                payload.amount,
                payload.set_at,
            )
        case CycleApproved():
            return [
                ApprovedTotal(
                    payload.approval_id,
                    EnvelopeKey(payload.period, payload.agency, total.scheme),
                    total.count,
                    total.amount,
                    total.envelope,
                    payload.approved_at,
                )
                for total in payload.totals
            ]
        case InstallmentScheduled():
            return _payment(payload, SCHEDULED, payload.scheduled_at)
        case PaymentSubmitted():
            return _payment(payload, SUBMITTED, payload.submitted_at)
        case PaymentSettled():
            return _payment(payload, SETTLED, payload.settled_at)
        case PaymentFailed():
            return _payment(
                payload, FAILED_PERMANENT if payload.permanent else FAILED, payload.failed_at
            )
        case PaymentReturned():
            return _payment(payload, RETURNED, payload.returned_at)
        case PaymentPaidInCash():
            return _payment(payload, PAID_CASH, payload.paid_at)
        case InstallmentCancelled():
            return _payment(payload, CANCELLED, payload.cancelled_at)
        case ClaimReceived():
            return ClaimReceivedEvent(
                payload.claim_id,
                period_of(payload.received_at),
                payload.commune_code,
                payload.commune_list_date,
                payload.scheme,
                payload.agency,
                payload.received_at,
            )
        case ClaimDecided():
            return ClaimDecidedEvent(
                payload.claim_id,
                period_of(payload.decided_at),
                payload.commune_code,
                payload.commune_list_date,
                payload.scheme,
                payload.agency,
                payload.outcome,
                payload.decided_at,
            )
    raise TypeError(f"no projection for {type(payload).__name__}")


HANDLED = (
    InstallmentScheduled,
    PaymentSubmitted,
    PaymentSettled,
    PaymentFailed,
    PaymentReturned,
    PaymentPaidInCash,
    InstallmentCancelled,
    ClaimReceived,
    ClaimDecided,
    EnvelopeSet,
    CycleApproved,
)
# On the cycle topic but nothing to the read models: skipped, never dead-lettered.
IGNORED = (CycleOpened,)


def _batch_of(session: AsyncSession, generation: int) -> Batch:
    batch = session.info.get(_BUFFER)
    if batch is None:
        batch = Batch(generation)
        session.info[_BUFFER] = batch
        postgres = is_postgres(session)

        def flush(sync_session: Session) -> None:
            pending = sync_session.info.pop(_BUFFER, None)
            if pending is not None:
                apply_batch(ProjectionRepository(sync_session.connection(), postgres), pending)

        sa_event.listen(session.sync_session, "before_commit", flush)
    return batch


def handler(generation: int) -> Callable[[AsyncSession, Delivery], Awaitable[None]]:
    async def project(session: AsyncSession, delivery: Delivery) -> None:
        batch = _batch_of(session, generation)
        event = to_domain(delivery.payload)
        if isinstance(event, PaymentEvent):
            batch.payments.append(event)
        elif isinstance(event, EnvelopeSetEvent):
            batch.envelopes.append(event)
        elif isinstance(event, list):
            batch.approvals.extend(event)
        else:
            batch.claims.append(event)
        batch.note(delivery.event.time)

    return project


def projection_runner(
    runtime: Runtime, generation: int, batch_size: int | None = None
) -> ConsumerRunner:
    project = handler(generation)
    return ConsumerRunner(
        name=group_name(generation),
        topics=TOPICS,
        handlers={CONTRACT_BY_MODEL[model].type: project for model in HANDLED},
        ignore_types=[CONTRACT_BY_MODEL[model].type for model in IGNORED],
        session_factory=runtime.session_factory,
        inbox=runtime.inbox_table,
        bus=runtime.bus,
        batch_size=batch_size or runtime.settings.consumer_batch_size,
    )


@dataclass
class Follow:
    """What `follow` did: the next offsets it committed per partition."""

    positions: dict[tuple[str, int], int]
    superseded: bool = False


async def follow(
    runner: ConsumerRunner,
    stop: asyncio.Event,
    *,
    still_current: Callable[[], Awaitable[bool]] | None = None,
    done: Callable[[dict[tuple[str, int], int]], bool] | None = None,
) -> Follow:
    """Poll, apply and commit until `stop`, until `done(positions)`, or until this generation is no
    longer current (checked before each batch and at least every second while idle)."""
    consumer = runner.bus.consumer(runner.name, runner.topics)
    dlq = runner.bus.producer()
    await consumer.start()
    await dlq.start()
    result = Follow({})
    loop = asyncio.get_running_loop()
    last_check = loop.time()
    try:
        while not stop.is_set():
            if done is not None and done(result.positions):
                break
            records = await consumer.poll(runner.batch_size, POLL_MS)
            if still_current is not None and (
                records or loop.time() - last_check >= CONTROL_CHECK_SECONDS
            ):
                last_check = loop.time()
                if not await still_current():
                    result.superseded = True
                    break
            if not records:
                continue
            try:
                await runner.process(records, dlq)
            except Superseded:
                result.superseded = True
                break
            offsets = next_offsets(records)
            await consumer.commit(offsets)
            result.positions.update(offsets)
    finally:
        await consumer.stop()
        await dlq.stop()
    return result


async def read_control(runtime: Runtime) -> ControlState:
    """The projection's control row, on a connection of its own (outside any batch)."""
    async with runtime.engine.connect() as connection:
        return await ControlRepository(connection).read()


async def wait_until_active(
    runtime: Runtime, stop: asyncio.Event, interval: float = 0.5
) -> int | None:
    """The live generation once no rebuild runs; None if asked to stop first."""
    told = False
    while not stop.is_set():
        state = await read_control(runtime)
        if state.active:
            return state.generation
        if not told:
            log.info(
                "waiting for a rebuild to finish",
                extra={"fields": {"generation": state.generation}},
            )
            told = True
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
    return None


async def run_projections(runtime: Runtime, stop: asyncio.Event) -> None:
    """The worker's projection loop: follow the active generation, switch when a rebuild lands."""
    while not stop.is_set():
        generation = await wait_until_active(runtime, stop)
        if generation is None:
            return
        runner = projection_runner(runtime, generation)
        log.info("projecting", extra={"fields": {"group": runner.name}})

        async def still_current(expected: int = generation) -> bool:
            state = await read_control(runtime)
            return state.generation == expected and state.active

        try:
            outcome = await follow(runner, stop, still_current=still_current)
        except Exception as exc:
            log.warning(
                "projection loop failed, restarting",
                extra={"fields": {"error": type(exc).__name__}},
            )
            await sleep_or_stop(stop, 1.0)
            continue
        if outcome.superseded:
            log.info("projection generation replaced", extra={"fields": {"group": runner.name}})
