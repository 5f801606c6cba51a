"""A reporting service under test: its database migrated, its runtime (bus and sessions), its
worker's projection loop when asked, and an HTTP client on its app (lifespan included)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.reporting import bootstrap
from services.reporting.adapters.offsets import caught_up, end_offsets
from services.reporting.adapters.orm import READ_MODEL_TABLES, metadata
from services.reporting.consumers.projections import (
    TOPICS,
    group_name,
    projection_runner,
    read_control,
    run_projections,
)
from services.reporting.domain.model import CLAIM_COUNTERS, PAYMENT_COUNTERS
from services.reporting.settings import ReportingSettings
from shared.events.contracts import ALL_TOPICS, Contract
from shared.messaging.embedded import EmbeddedBus
from shared.messaging.kafka import KafkaBus
from shared.messaging.ports import OutgoingRecord
from shared.migrations import upgrade_to_head_async
from shared.runtime import Runtime
from tests.reporting.support.bus import NamespacedBus
from tests.reporting.support.events import as_received, record
from tests.support import tokens
from tests.support.waiting import wait_until

DETAIL_READER = frozenset({"reports:read", "reports:detail"})


def bearer(settings: ReportingSettings, scopes: Iterable[str] = DETAIL_READER) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(scopes, sub='reporting-tests')}"}


@dataclass
class Reporting:
    """`client` reads as an analyst with `reports:detail` (every cell shown); `public` sends no token."""

    settings: ReportingSettings
    runtime: Runtime
    app: FastAPI
    client: httpx.AsyncClient
    public: httpx.AsyncClient
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    _fed: int = 0

    # --- events in -------------------------------------------------------------------------

    async def publish(self, items: Iterable[Contract | OutgoingRecord]) -> None:
        """Through the bus, as the other services' relays publish."""
        outgoing = [i if isinstance(i, OutgoingRecord) else record(i) for i in items]
        producer = self.runtime.bus.producer()
        await producer.start()
        try:
            for start in range(0, len(outgoing), 5000):
                await producer.publish(outgoing[start : start + 5000])
        finally:
            await producer.stop()

    async def feed(self, items: Iterable[Contract | OutgoingRecord], batch: int = 500) -> None:
        """Straight into the projection consumer (inbox, transaction and all), without a broker."""
        outgoing = [i if isinstance(i, OutgoingRecord) else record(i) for i in items]
        generation = (await read_control(self.runtime)).generation
        runner = projection_runner(self.runtime, generation)
        dlq = self.runtime.bus.producer()
        await dlq.start()
        try:
            for start in range(0, len(outgoing), batch):
                chunk = as_received(outgoing[start : start + batch], self._fed)
                self._fed += len(chunk)
                await runner.process(chunk, dlq)
        finally:
            await dlq.stop()

    def start_worker(self) -> None:
        self.tasks.append(asyncio.ensure_future(run_projections(self.runtime, self.stop)))

    async def stop_worker(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.stop = asyncio.Event()

    # --- figures out -----------------------------------------------------------------------

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    async def kpis(self, **params: Any) -> dict:
        return (await self.get("/v1/kpis", **params))["figures"]

    async def wait_for_events(self, count: int, timeout: float = 60.0) -> None:
        async def applied() -> bool:
            return (await read_control(self.runtime)).events_applied >= count

        await wait_until(applied, timeout, message=f"{count} events applied")

    async def wait_caught_up(self, timeout: float = 60.0) -> None:
        """Until the live generation's group has committed everything on the topics."""
        ends = await end_offsets(self.runtime.bus, TOPICS)

        async def done() -> bool:
            state = await read_control(self.runtime)
            if not state.active:
                return False
            committed = await self.committed(group_name(state.generation))
            return caught_up(committed, ends)

        await wait_until(done, timeout, interval=0.2, message="the projection to catch up")

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        bus = self.runtime.bus
        if isinstance(bus, NamespacedBus):
            return await bus.committed(group)
        assert isinstance(bus, EmbeddedBus)

        def read() -> dict[tuple[str, int], int]:
            conn = sqlite3.connect(bus.path, timeout=30)
            try:
                rows = conn.execute(
                    "SELECT topic, partition, next_offset FROM group_offsets WHERE group_id = ?",
                    (group,),
                ).fetchall()
            finally:
                conn.close()
            return {(t, int(p)): int(o) for t, p, o in rows}

        return await asyncio.to_thread(read)

    async def read_models(self) -> dict[str, list[tuple]]:
        """Every read-model row (cube rows with a non-zero counter), in key order."""
        out: dict[str, list[tuple]] = {}
        async with self.runtime.session_factory() as session:
            for table in READ_MODEL_TABLES:
                query = select(table).order_by(*table.primary_key.columns)
                rows = (await session.execute(query)).mappings().all()
                counters = {
                    "payment_cube": PAYMENT_COUNTERS,
                    "payment_rollup": PAYMENT_COUNTERS,
                    "claim_cube": CLAIM_COUNTERS,
                    "claim_rollup": CLAIM_COUNTERS,
                }.get(table.name, ())
                out[table.name] = [
                    tuple(r.values()) for r in rows if not counters or any(r[c] for c in counters)
                ]
        return out

    async def api_figures(self) -> dict[str, Any]:
        """What the dashboard reads, for whole-snapshot comparisons."""
        snapshot: dict[str, Any] = {"kpis": await self.kpis()}
        for dimension in (
            "district",
            "commune",
            "area-type",
            "scheme",
            "agency",
            "channel",
            "period",
        ):
            snapshot[dimension] = await self.get(f"/v1/breakdowns/{dimension}")
        snapshot["series"] = await self.get("/v1/timeseries", split="area-type")
        return snapshot


@contextlib.asynccontextmanager
async def open_reporting(
    settings: ReportingSettings, *, namespace_kafka: bool = False
) -> AsyncIterator[Reporting]:
    await upgrade_to_head_async(bootstrap.MIGRATIONS, settings.resolved_database_url())
    runtime = await Runtime.open(settings, metadata)
    namespaced: NamespacedBus | None = None
    if namespace_kafka:
        assert isinstance(runtime.bus, KafkaBus)
        namespaced = NamespacedBus(runtime.bus, f"t{uuid.uuid4().hex[:10]}")
        await namespaced.ensure_topics(ALL_TOPICS)
        runtime.bus = namespaced
    app = bootstrap.create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport, base_url="http://reporting", headers=bearer(settings)
            ) as client,
            httpx.AsyncClient(transport=transport, base_url="http://reporting") as public,
        ):
            reporting = Reporting(settings, runtime, app, client, public)
            try:
                yield reporting
            finally:
                await reporting.stop_worker()
    finally:
        await runtime.close()
        if namespaced is not None:
            await namespaced.delete_topics()


def settings_for(
    data_dir: Path, database_url: str | None = None, kafka: str | None = None, **extra: Any
) -> ReportingSettings:
    return ReportingSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka,
        data_dir=data_dir,
        topic_partitions=3,
        **({"consumer_batch_size": 500, **tokens.trust("reporting")} | extra),
    )
