"""The projection's control row, and a rebuild's reset of the read models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, text, update

from services.reporting.adapters.orm import (
    PROJECTIONS,
    READ_MODEL_TABLES,
    processed_messages,
    projection_state,
)
from services.reporting.adapters.repository.common import Db, changed
from services.reporting.domain.control import ACTIVE, REBUILDING, ControlState
from shared.clock import as_utc
from shared.db import is_postgres

INBOX_PREFIX = "reporting.projections"  # every generation's consumer name starts so


class ControlRepository:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def read(self) -> ControlState:
        row = (
            await self.db.execute(
                select(projection_state).where(projection_state.c.name == PROJECTIONS)
            )
        ).one()
        return ControlState(
            row.generation,
            row.state,
            int(row.events_applied),
            as_utc(row.last_event_at),
            as_utc(row.last_applied_at),
            as_utc(row.rebuild_started_at),
            as_utc(row.rebuilt_at),
        )

    async def start_generation(self, now: datetime) -> int:
        """The next generation, rebuilding: the read models and their inbox emptied."""
        # Taking the control row first makes a live consumer's open transaction finish (it holds a
        # lock on it until it commits) and every later one see the new generation.
        generation = (
            await self.db.execute(
                update(projection_state)
                .where(projection_state.c.name == PROJECTIONS)
                .values(
                    generation=projection_state.c.generation + 1,
                    state=REBUILDING,
                    rebuild_started_at=now,
                    events_applied=0,
                    last_event_at=None,
                    last_applied_at=None,
                )
                .returning(projection_state.c.generation)
            )
        ).scalar_one()
        if is_postgres(self.db):
            names = ", ".join(t.name for t in READ_MODEL_TABLES)
            await self.db.execute(text(f"TRUNCATE {names}"))
        else:
            for table in READ_MODEL_TABLES:
                await self.db.execute(delete(table))
        await self.db.execute(
            delete(processed_messages).where(processed_messages.c.consumer.like(f"{INBOX_PREFIX}%"))
        )
        return int(generation)

    async def activate(self, generation: int, now: datetime) -> bool:
        """Make a rebuilt generation the live one; false if another rebuild replaced it."""
        result = await self.db.execute(
            update(projection_state)
            .where(
                projection_state.c.name == PROJECTIONS, projection_state.c.generation == generation
            )
            .values(state=ACTIVE, rebuilt_at=now)
        )
        return changed(result)
