"""The unit of work: one transaction, opened and committed by a boundary (an HTTP request, a
consumer batch, a worker step), never by the service layer, which only executes statements on
it and flushes. It carries what every handler needs: the dialect-aware statements, the events to
publish (written into the outbox in the same transaction) and the clock.

    async with unit_of_work(runtime.engine, runtime.outbox, actor=principal.client_id) as uow:
        await register_claim(uow, filing)        # executes statements, emits events
    # committed here with its outbox rows, or rolled back if the block raised
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncSession,
    async_sessionmaker,
)

from shared.clock import utcnow
from shared.db import for_update, insert_for, is_postgres
from shared.events.contracts import Contract
from shared.observability import current_correlation_id
from shared.outbox import Outbox
from shared.tracing import current_traceparent


@dataclass
class UnitOfWork:
    db: AsyncSession | AsyncConnection
    outbox: Outbox
    actor: str  # who acts: a client id, a person, or a worker's name
    now: datetime
    postgres: bool
    traceparent: str | None = None  # None: the current trace context
    events: list[Contract] = field(default_factory=list)
    bulk_rows: list[tuple[Any, ...]] = field(default_factory=list)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await self.db.execute(statement, parameters)

    async def stream(self, statement: Any, parameters: Any = None) -> AsyncResult[Any]:
        """The rows from a server-side cursor, a chunk at a time (`yield_per`), not all at once."""
        return await self.db.stream(statement, parameters)

    def insert(self, table: Table) -> Any:
        """`INSERT` with the dialect's `on_conflict_do_nothing`/`on_conflict_do_update` (upserts)."""
        return insert_for(self.postgres, table)

    def for_update(self, query: Any, **options: Any) -> Any:
        return for_update(self.postgres, query, **options)

    def emit(self, *events: Contract) -> None:
        self.events.extend(events)

    def emit_bulk(self, model: type[Contract], items: Sequence[dict[str, Any]]) -> None:
        """Many events of one type from JSON-ready dicts (a cycle's installments, a bank batch)."""
        self.bulk_rows.extend(
            self.outbox.bulk_rows(model, items, correlation=current_correlation_id())
        )

    async def flush(self) -> None:
        """Write what was emitted into the outbox, in this transaction: one write, one NOTIFY."""
        rows = self.outbox.rows(
            self.events,
            correlation=current_correlation_id(),
            traceparent=self.traceparent or current_traceparent(),
        )  # stamped when written, as the events' time has always been
        rows.extend(self.bulk_rows)
        self.events, self.bulk_rows = [], []
        await self.outbox.write(self.db, rows)


U = TypeVar("U", bound=UnitOfWork)
Opener = AsyncEngine | async_sessionmaker[AsyncSession]


@asynccontextmanager
async def unit_of_work(
    opener: Opener,
    outbox: Outbox,
    actor: str,
    *,
    now: datetime | None = None,
    kind: Callable[..., U] = UnitOfWork,  # type: ignore[assignment]
) -> AsyncIterator[U]:
    """Open a transaction on an engine (a connection) or a session factory (a session), hand it
    out as a unit of work, and commit it with its flushed events when the block ends."""
    if isinstance(opener, AsyncEngine):
        async with opener.begin() as connection:
            uow = kind(connection, outbox, actor, now or utcnow(), is_postgres(opener))
            yield uow
            await uow.flush()
        return
    async with opener() as session, session.begin():
        uow = kind(session, outbox, actor, now or utcnow(), is_postgres(session))
        yield uow
        await uow.flush()


def joining(
    db: AsyncSession | AsyncConnection,
    outbox: Outbox,
    actor: str,
    *,
    kind: Callable[..., U] = UnitOfWork,  # type: ignore[assignment]
) -> U:
    """A unit of work on a transaction its boundary already opened and will commit (a consumer
    runner's batch, with the inbox keys of its events): the caller flushes it, never commits."""
    return kind(db, outbox, actor, utcnow(), is_postgres(db))
