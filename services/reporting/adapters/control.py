"""The projection's control row: which generation is live, whether a rebuild runs, freshness."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.adapters.orm import (
    PROJECTIONS,
    READ_MODEL_TABLES,
    processed_messages,
    projection_state,
)

log = logging.getLogger(__name__)

ACTIVE, REBUILDING = "ACTIVE", "REBUILDING"
INBOX_PREFIX = "reporting.projections"


@dataclass(frozen=True, slots=True)
class ControlState:
    generation: int
    state: str
    events_applied: int
    last_event_at: datetime | None
    last_applied_at: datetime | None
    rebuild_started_at: datetime | None
    rebuilt_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ProjectionControl:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def read(self) -> ControlState:
        async with self.session_factory() as session:
            row = (await session.execute(
                select(projection_state).where(projection_state.c.name == PROJECTIONS)
            )).one()
        return ControlState(row.generation, row.state, int(row.events_applied), _utc(row.last_event_at),
                            _utc(row.last_applied_at), _utc(row.rebuild_started_at), _utc(row.rebuilt_at))

    async def wait_until_active(self, stop: asyncio.Event, interval: float = 0.5) -> int | None:
        """The live generation once no rebuild runs; None if asked to stop first."""
        told = False
        while not stop.is_set():
            state = await self.read()
            if state.active:
                return state.generation
            if not told:
                log.info("waiting for a rebuild to finish", extra={"fields": {"generation": state.generation}})
                told = True
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
        return None

    async def begin_rebuild(self) -> int:
        """Start a new generation: empty the read models and their inbox, in one transaction."""
        async with self.session_factory() as session, session.begin():
            postgres = session.bind.dialect.name == "postgresql"
            # Taking the control row first makes a live consumer's open transaction finish (it holds a
            # lock on it until it commits) and every later one see the new generation.
            generation = (await session.execute(
                update(projection_state).where(projection_state.c.name == PROJECTIONS)
                .values(generation=projection_state.c.generation + 1, state=REBUILDING,
                        rebuild_started_at=datetime.now(UTC), events_applied=0, last_event_at=None,
                        last_applied_at=None)
                .returning(projection_state.c.generation)
            )).scalar_one()
            if postgres:
                names = ", ".join(t.name for t in READ_MODEL_TABLES)
                await session.execute(text(f"TRUNCATE {names}"))
            else:
                for table in READ_MODEL_TABLES:
                    await session.execute(delete(table))
            await session.execute(
                delete(processed_messages).where(processed_messages.c.consumer.like(f"{INBOX_PREFIX}%"))
            )
        return int(generation)

    async def finish_rebuild(self, generation: int) -> bool:
        async with self.session_factory() as session, session.begin():
            result = await session.execute(
                update(projection_state)
                .where(projection_state.c.name == PROJECTIONS, projection_state.c.generation == generation)
                .values(state=ACTIVE, rebuilt_at=datetime.now(UTC))
            )
        return bool(result.rowcount)
