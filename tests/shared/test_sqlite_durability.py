"""The embedded default survives a power loss without losing a consumed event: the service
database (inbox and side effects) is synced as fully as the event log (committed offsets), so an
offset that survives always comes after the inbox commit it follows."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from shared.db import make_engine
from shared.messaging.embedded import EmbeddedBus

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


class TestSynchronousPragma:
    async def test_every_service_database_connection_runs_with_full_sync(self, tmp_path):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
        try:

            async def pragmas() -> tuple[int, str]:
                async with engine.connect() as conn:
                    synchronous = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
                    journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
                    await asyncio.sleep(
                        0.05
                    )  # hold it, so that the others open connections of their own
                    return synchronous, journal

            seen = await asyncio.gather(*(pragmas() for _ in range(3)))
        finally:
            await engine.dispose()
        assert seen == [(FULL, "wal")] * 3

    async def test_event_log_connections_run_with_the_same_sync_as_the_service_database(
        self, tmp_path
    ):
        bus = EmbeddedBus(tmp_path / "events.db")
        producer = bus.producer()
        consumer = bus.consumer("durability.test", ["intake.claim.v1"])
        await producer.start()
        await consumer.start()
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
        try:
            async with engine.connect() as conn:
                service = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            log = [
                c.execute("PRAGMA synchronous").fetchone()[0]
                for c in (producer._conn, consumer._conn)
            ]
        finally:
            await engine.dispose()
            await producer.stop()
            await consumer.stop()
        assert log == [service, service] == [FULL, FULL]
