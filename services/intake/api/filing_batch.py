"""Group commit for claim filings on PostgreSQL: a boundary between the filing requests and
their transactions.

Under load, many filings wait at once. A writer task takes all that are waiting (up to
`max_batch`) and writes them in ONE unit of work with `claims.write_filings`, the same write a
single filing takes (multi-row statements on PostgreSQL, then one outbox write and one NOTIFY).
Each filing keeps its own outcome: a dossier id already used is answered by replay or 409
after the commit, an identity that does not match the registered person is a 422, and nothing of
those filings is written. When one transaction is in flight the next batch gathers; a filing
that finds the writer idle waits `wait_s` for company first. So a busy service amortises the
round trips and the commit over many filings without waiting, and a moderately loaded one (a few
hundred filings a second) still writes several per transaction instead of one each. The writer keeps one connection between batches (taking one from the pool
costs a liveness check, three round trips); a batch that fails as a whole gives it up, and its
filings are written one per transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.intake.service_layer import claims
from services.intake.service_layer.claims import FILING_SCOPE, Filing, FilingOutcome
from services.intake.service_layer.common import IntakeUnitOfWork, raise_replay_or_conflict
from shared.observability import correlation_id
from shared.outbox import Outbox
from shared.uow import joining, unit_of_work

log = logging.getLogger(__name__)
BATCH_ACTOR = "intake.filing-batch"  # each filing's rows name its own client


@dataclass
class _Waiting:
    filing: Filing
    future: asyncio.Future[bytes]


class FilingBatcher:
    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, max_batch: int = 256, wait_s: float = 0.0
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._waiting: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._connection: AsyncConnection | None = None
        self.batches = 0
        self.filings = 0

    async def submit(self, filing: Filing) -> bytes:
        """Write the filing (with others); its 201 answer, or raises Replay / ModifiedRequest / Invalid."""
        if self._closed:
            raise RuntimeError("the filing writer is closed")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(filing, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return await asyncio.shield(future)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _run(self) -> None:
        idle = True  # started by a filing that found no writer
        while True:
            if not self._waiting:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                idle = True
                continue
            if idle and self.wait_s and not self._closed:
                await asyncio.sleep(self.wait_s)  # for company
            idle = False
            batch = self._take()
            try:
                await self._write(batch)
            except Exception as exc:
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)

    def _take(self) -> list[_Waiting]:
        """Up to max_batch filings, at most one per national id and per dossier id (the rest wait)."""
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        people: set[str] = set()
        dossiers: set[str] = set()
        for waiting in self._waiting:
            cmd = waiting.filing.cmd
            if (
                len(batch) >= self.max_batch
                or cmd.national_id in people
                or cmd.portal_dossier_id in dossiers
            ):
                rest.append(waiting)
                continue
            people.add(cmd.national_id)
            dossiers.add(cmd.portal_dossier_id)
            batch.append(waiting)
        self._waiting = rest
        return batch

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = await self._write_batch(batch)
        except Exception as exc:
            log.warning(
                "filing batch failed, writing one by one",
                extra={"fields": {"filings": len(batch), "error": type(exc).__name__}},
            )
            await asyncio.gather(*(self._write_one(w) for w in batch))
            return
        self.batches += 1
        replays = [
            w for w, outcome in zip(batch, outcomes, strict=True) if isinstance(outcome, str)
        ]  # ALREADY_FILED
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, bytes):
                self.filings += 1
                waiting.future.set_result(outcome)
            elif isinstance(outcome, Exception):
                waiting.future.set_exception(outcome)
        if replays:
            await asyncio.gather(*(self._replay(w) for w in replays))

    async def _write_one(self, waiting: _Waiting) -> None:
        filing = waiting.filing
        token = correlation_id.set(filing.correlation_id)
        try:
            async with unit_of_work(
                self.engine, self.outbox, filing.actor, now=filing.now, kind=IntakeUnitOfWork
            ) as uow:
                answer = await claims.write_prepared_filing(uow, filing)
            waiting.future.set_result(answer)
        except Exception as exc:
            waiting.future.set_exception(exc)
        finally:
            correlation_id.reset(token)

    async def _replay(self, waiting: _Waiting) -> None:
        cmd = waiting.filing.cmd
        try:
            async with self.engine.connect() as conn:
                await raise_replay_or_conflict(
                    conn, FILING_SCOPE, cmd.portal_dossier_id, cmd.request_hash
                )
            # Not found: the earlier filing rolled back meanwhile; write this one on its own.
            await self._write_one(waiting)
        except Exception as exc:  # Replay, ModifiedRequest, or the write's own failure
            waiting.future.set_exception(exc)

    async def _write_batch(self, batch: list[_Waiting]) -> list[FilingOutcome]:
        """One transaction on the writer's connection; this method is its boundary."""
        if self._connection is None:
            self._connection = await self.engine.connect()
        connection = self._connection
        try:
            async with connection.begin():
                uow = joining(connection, self.outbox, BATCH_ACTOR, kind=IntakeUnitOfWork)
                outcomes = await claims.write_filings(uow, [w.filing for w in batch])
                await uow.flush()
            return outcomes
        except BaseException:
            # It may be broken: the next batch takes a fresh one from the pool.
            self._connection = None
            await connection.invalidate()
            await connection.close()
            raise
