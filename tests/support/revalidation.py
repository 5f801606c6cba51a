"""Intake's identity revalidation as payout receives it, for payout-only tests: the
`RevalidationCompleted` parts of a period, delivered to payout's revalidation consumer the way
the bus hands them over (records of CloudEvents), without intake running."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from services.payout.consumers.revalidation import revalidation_consumer
from shared.events.contracts import (
    CONTRACT_BY_MODEL,
    MAX_REVALIDATION_HOLDS,
    REVALIDATION_TOPIC,
    RevalidationCompleted,
    RevalidationHold,
)
from shared.events.envelope import CloudEvent
from shared.messaging.ports import ReceivedRecord
from shared.runtime import Runtime

_offsets = itertools.count(1)


def revalidation_parts(
    period: str,
    holds: Sequence[tuple[str, str]] = (),
    *,
    checked: int | None = None,
    part_size: int = MAX_REVALIDATION_HOLDS,
) -> list[RevalidationCompleted]:
    """Intake's whole answer for `period`: `holds` as (beneficiary id, DECEASED |
    IDENTITY_MISMATCH | NOT_FOUND), in parts of `part_size`, the last one marked."""
    chunks = [list(holds[i : i + part_size]) for i in range(0, len(holds), part_size)] or [[]]
    now = datetime.now(UTC)
    return [
        RevalidationCompleted(
            period=period,
            part=number,
            last=number == len(chunks),
            checked=checked if checked is not None else len(holds),
            holds=[RevalidationHold(beneficiary_id=b, outcome=o) for b, o in chunk],  # type: ignore[arg-type]
            completed_at=now,
        )
        for number, chunk in enumerate(chunks, start=1)
    ]


def records(events: Sequence[RevalidationCompleted]) -> list[ReceivedRecord]:
    out = []
    for event in events:
        envelope = CloudEvent(
            type=CONTRACT_BY_MODEL[RevalidationCompleted].type,
            source="/benefits/intake",
            subject=event.period,
            data=event.model_dump(mode="json"),
        )
        out.append(
            ReceivedRecord(
                REVALIDATION_TOPIC, 0, next(_offsets), event.period.encode(), envelope.to_json()
            )
        )
    return out


async def deliver_revalidation(
    runtime: Runtime,
    events: Sequence[RevalidationCompleted],
    *,
    twice: bool = False,
    name: str = "payout.revalidation.test",
) -> None:
    """Hand `events` to payout's revalidation consumer in one poll batch (`twice`: each again)."""
    received = records(events)
    if twice:
        received = received + received
    consumer = revalidation_consumer(runtime, name=name)
    dlq = runtime.bus.producer()
    await dlq.start()
    try:
        await consumer.process(received, dlq)
    finally:
        await dlq.stop()


async def nobody_held(runtime: Runtime, period: str, checked: int = 0) -> None:
    """Intake's answer that nobody of `period` is held: the period counts as revalidated."""
    await deliver_revalidation(runtime, revalidation_parts(period, checked=checked))
