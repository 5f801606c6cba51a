"""Rebuild the read models from scratch by replaying the topics from the beginning.

1. Note how far every partition reaches now.
2. Start generation N+1: the read models and their inbox are emptied in one transaction; a live
   worker's open transaction finishes first, its later ones see the new generation and stop.
3. Replay with the consumer group of N+1 from the first offset until the noted ends are passed.
4. Switch: N+1 becomes active, and live workers continue from where the replay stopped.

The command is the boundary: steps 2 and 4 are one transaction each, the replay one per batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from services.reporting.adapters.offsets import caught_up, end_offsets
from services.reporting.adapters.repository import ControlRepository
from services.reporting.consumers.projections import TOPICS, follow, projection_runner, read_control
from shared.runtime import Runtime
from shared.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)
ACTOR = "reporting.rebuild"


@dataclass(frozen=True, slots=True)
class RebuildResult:
    generation: int
    events_applied: int
    records_read: int
    seconds: float


class RebuildFailed(RuntimeError):
    pass


def _step(runtime: Runtime) -> AbstractAsyncContextManager[UnitOfWork]:
    """A step of the rebuild in a transaction of its own, committed when the block ends."""
    return unit_of_work(runtime.engine, runtime.outbox, ACTOR)


async def rebuild(
    runtime: Runtime, *, timeout: float | None = None, batch_size: int | None = None
) -> RebuildResult:
    started = time.monotonic()
    await runtime.bus.ensure_topics(TOPICS)
    ends = await end_offsets(runtime.bus, TOPICS)
    async with _step(runtime) as uow:
        generation = await ControlRepository(uow.db).start_generation(uow.now)
    log.info(
        "rebuild started",
        extra={"fields": {"generation": generation, "records": sum(ends.values())}},
    )
    runner = projection_runner(runtime, generation, batch_size=batch_size)
    stop = asyncio.Event()

    async def still_current() -> bool:
        return (await read_control(runtime)).generation == generation

    replay = follow(
        runner, stop, still_current=still_current, done=lambda positions: caught_up(positions, ends)
    )
    try:
        outcome = await asyncio.wait_for(replay, timeout) if timeout else await replay
    except TimeoutError as exc:
        raise RebuildFailed(f"the replay did not catch up within {timeout} s") from exc
    if outcome.superseded:
        raise RebuildFailed(f"generation {generation} was replaced by another rebuild")
    async with _step(runtime) as uow:
        switched = await ControlRepository(uow.db).activate(generation, uow.now)
    if not switched:
        raise RebuildFailed(f"generation {generation} was replaced by another rebuild")
    state = await read_control(runtime)
    result = RebuildResult(
        generation,
        state.events_applied,
        sum(outcome.positions.values()),
        round(time.monotonic() - started, 3),
    )
    log.info(
        "rebuild finished",
        extra={
            "fields": {
                "generation": generation,
                "events": result.events_applied,
                "seconds": result.seconds,
            }
        },
    )
    return result
