"""The outbox relay's pending gauge is refreshed at most once an interval: counting the
pending rows walks their index, and an idle relay loop may only be waiting for lanes."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from services.payout.adapters.orm import outbox, outbox_lanes
from shared.outbox import OutboxRelay


class IdleRelay(OutboxRelay):
    counted = 0

    async def publish_once(self) -> int:
        return 0

    async def pending_count(self) -> int:
        self.counted += 1
        return 0


class TestPendingGauge:
    async def test_an_idle_relay_counts_its_pending_rows_once_an_interval(self):
        engine = create_async_engine("sqlite+aiosqlite://")
        relay = IdleRelay(
            engine,
            async_sessionmaker(engine),
            outbox,
            outbox_lanes,
            producer=None,  # type: ignore[arg-type]  # nothing is published
            service="payout",
            pending_gauge_seconds=3600,
        )
        stop = asyncio.Event()
        loop = asyncio.ensure_future(relay.run(stop))

        async def looped_a_while() -> None:
            while relay.counted == 0:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # idle polls every 50 ms on SQLite: about ten loops

        await asyncio.wait_for(looped_a_while(), 30)
        stop.set()
        await loop
        await engine.dispose()
        assert relay.counted == 1
