"""A minimal service used to prove the event backbone: an outbox, an inbox and a table of
applied effects, on either backend (PostgreSQL + Kafka, or SQLite + the embedded log)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from shared.db import BigId
from shared.events.contracts import BENEFICIARY_TOPIC, CONTRACT_BY_MODEL, EntitlementStopped
from shared.inbox import ConsumerRunner, Delivery, inbox_table
from shared.outbox import outbox_tables
from shared.runtime import Runtime
from shared.settings import ServiceSettings

metadata = MetaData()
outbox, outbox_lanes = outbox_tables(metadata)
processed = inbox_table(metadata)
applied = Table(
    "applied",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("key", String(100), nullable=False),
    Column("seq", Integer, nullable=False),
)
widgets = Table("widgets", metadata, Column("id", String(64), primary_key=True))

STOPPED_TYPE = CONTRACT_BY_MODEL[EntitlementStopped].type


class ProbeSettings(ServiceSettings):
    service_name: str = "probe"


def probe_settings(
    database_url: str | None, kafka: str | None, data_dir: Path, topic_prefix: str = ""
) -> ProbeSettings:
    """Each test gets its own topics (by prefix) so no test reads another's history."""
    return ProbeSettings(
        environment="development",
        database_url=database_url,
        kafka_bootstrap_servers=kafka,
        data_dir=data_dir,
        topic_partitions=4,
        relay_batch_size=50,
        topic_prefix=topic_prefix,
    )


async def open_probe(settings: ProbeSettings) -> Runtime:
    runtime = await Runtime.open(settings, metadata)
    async with runtime.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        if (await conn.execute(select(func.count()).select_from(outbox_lanes))).scalar_one() == 0:
            await conn.execute(
                insert(outbox_lanes), [{"lane": n, "failures": 0} for n in range(16)]
            )
    return runtime


def stopped(key: str, seq: int) -> EntitlementStopped:
    """An event whose key is `key` and whose position in that key's history is `seq`."""
    return EntitlementStopped(
        entitlement_id=str(seq),
        beneficiary_id=key,
        reason="OTHER",
        effective_period="2023-01",
        stopped_at=datetime.now(UTC),
    )


def consumer(
    runtime: Runtime, name: str, delay_per_event: float = 0.0, batch_size: int = 100
) -> ConsumerRunner:
    async def record(session, delivery: Delivery) -> None:
        if delay_per_event:
            await asyncio.sleep(delay_per_event)
        payload = delivery.payload
        await session.execute(
            insert(applied).values(
                consumer=name,
                event_id=delivery.event.id,
                key=payload.beneficiary_id,
                seq=int(payload.entitlement_id),
            )
        )

    return ConsumerRunner(
        name,
        [BENEFICIARY_TOPIC],
        {STOPPED_TYPE: record},
        runtime.session_factory,
        processed,
        runtime.bus,
        batch_size=batch_size,
        max_attempts=2,
    )


@dataclass
class Applied:
    total: int
    distinct: int
    by_key: dict[str, list[int]]


async def applied_effects(runtime: Runtime, name: str) -> Applied:
    async with runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(applied.c.event_id, applied.c.key, applied.c.seq)
                .where(applied.c.consumer == name)
                .order_by(applied.c.id)
            )
        ).all()
    by_key: dict[str, list[int]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row.seq)
    return Applied(len(rows), len({r.event_id for r in rows}), by_key)
