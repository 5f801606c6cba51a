"""What a running service holds: engine, sessions, bus and outbox, built at startup (never at
import time) and closed at shutdown. The API process and the worker process both use it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import make_bus
from shared.db import is_sqlite, make_engine, make_session_factory
from shared.events.contracts import ALL_TOPICS
from shared.messaging.ports import EventBus, EventProducer
from shared.migrations import upgrade_to_head_async
from shared.observability import configure_logging
from shared.outbox import OUTBOX_LANES, Outbox, OutboxRelay
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing_from_env

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    bus: EventBus
    outbox: Outbox
    outbox_table: Table
    lanes_table: Table
    inbox_table: Table

    @classmethod
    async def open(cls, settings: ServiceSettings, metadata: MetaData) -> Runtime:
        url = settings.resolved_database_url()
        engine = make_engine(url)
        bus = make_bus(settings)
        try:
            await asyncio.wait_for(bus.ensure_topics(ALL_TOPICS), timeout=15)
        except Exception as exc:
            log.warning(
                "could not make sure the topics exist; continuing",
                extra={"fields": {"error": type(exc).__name__}},
            )
        outbox_table = metadata.tables["outbox"]
        return cls(
            settings=settings,
            engine=engine,
            session_factory=make_session_factory(engine),
            bus=bus,
            outbox=Outbox(outbox_table, settings.service_name, notify=not is_sqlite(url)),
            outbox_table=outbox_table,
            lanes_table=metadata.tables["outbox_lanes"],
            inbox_table=metadata.tables["processed_messages"],
        )

    async def close(self) -> None:
        await self.engine.dispose()

    def relay(
        self, producer: EventProducer | None = None, lanes_per_claim: int = OUTBOX_LANES
    ) -> OutboxRelay:
        return OutboxRelay(
            self.engine,
            self.session_factory,
            self.outbox_table,
            self.lanes_table,
            producer or self.bus.producer(),
            self.settings.service_name,
            batch_size=self.settings.relay_batch_size,
            lanes_per_claim=lanes_per_claim,
        )


async def run_relay(
    runtime: Runtime, stop: asyncio.Event, relay: OutboxRelay | None = None
) -> None:
    """Publish the outbox until `stop`. On PostgreSQL several relay loops share one producer,
    each claiming a few lanes, so database and broker round trips overlap."""
    if relay is None:
        loops = 1 if is_sqlite(runtime.engine) else max(1, runtime.settings.relay_concurrency)
        producer = runtime.bus.producer()
        relays = [
            runtime.relay(producer, lanes_per_claim=-(-OUTBOX_LANES // loops)) for _ in range(loops)
        ]
    else:
        producer, relays = relay.producer, [relay]
    await producer.start()
    try:
        await asyncio.gather(*(r.run(stop) for r in relays))
    finally:
        await producer.stop()


WorkerFactory = Callable[[Runtime, asyncio.Event], Sequence[Awaitable[None]]]


def service_main(
    argv: Sequence[str] | None,
    *,
    name: str,
    settings_factory: Callable[[], ServiceSettings],
    migrations: Path,
    metadata: MetaData,
    app_path: str,
    workers: WorkerFactory,
) -> None:
    """`python -m services.<name> {api|worker|migrate}`."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    sub.add_parser("worker", help="run the outbox relay and the event consumers")
    sub.add_parser("migrate", help="bring the database schema to the latest revision")
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(settings.log_level, name)
    configure_tracing_from_env()

    if args.command == "migrate":
        asyncio.run(upgrade_to_head_async(migrations, settings.resolved_database_url()))
        log.info("migrated", extra={"fields": {"service": name}})
    elif args.command == "api":
        import uvicorn

        uvicorn.run(
            app_path,
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            log_config=None,
            access_log=False,
        )
    else:
        asyncio.run(_run_workers(settings, metadata, workers))


async def _run_workers(
    settings: ServiceSettings, metadata: MetaData, workers: WorkerFactory
) -> None:
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.open(settings, metadata)
    try:
        await asyncio.gather(*workers(runtime, stop))
    finally:
        await runtime.close()
