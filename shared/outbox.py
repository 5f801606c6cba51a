"""Transactional outbox: events are rows written in the same transaction as the state change,
and a relay publishes them afterwards. An event is published if and only if its change commits.

Relays claim *lanes* (a hash of the event key) with `FOR UPDATE SKIP LOCKED`, so several relays
share the work while each key's events are published by one relay at a time, in id order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    Column,
    CursorResult,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    SmallInteger,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shared.bulk import one_of
from shared.db import BigId, is_sqlite
from shared.events.contracts import CONTRACT_BY_MODEL, Contract
from shared.events.envelope import (
    CORRELATION_HEADER,
    EVENT_TYPE_HEADER,
    TRACEPARENT_HEADER,
    encode_event,
)
from shared.messaging.ports import EventProducer, OutgoingRecord
from shared.metrics import OUTBOX_PENDING, OUTBOX_PUBLISHED
from shared.observability import current_correlation_id
from shared.tracing import current_traceparent
from shared.waiting import sleep_or_stop

log = logging.getLogger(__name__)

OUTBOX_LANES = 16


def outbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("lane", SmallInteger, nullable=False),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("event_type", String(200), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("correlation_id", String(64), nullable=True),
        Column("traceparent", String(128), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index(
            "ix_outbox_pending",
            "lane",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )
    lanes = Table(
        "outbox_lanes",
        metadata,
        Column("lane", SmallInteger, primary_key=True, autoincrement=False),
        Column("failures", Integer, nullable=False, server_default="0"),
    )
    return outbox, lanes


def lane_for(key: str) -> int:
    return zlib.crc32(key.encode()) % OUTBOX_LANES


def notify_channel(service: str) -> str:
    return f"outbox_{service}"


COLUMNS = (
    "lane",
    "event_id",
    "event_type",
    "topic",
    "key",
    "payload",
    "correlation_id",
    "traceparent",
    "created_at",
)
# Below this many rows a multi-row INSERT is cheaper than COPY's extra round trips.
COPY_THRESHOLD = 16


@lru_cache(maxsize=4096)
def json_time(moment: datetime) -> str:
    """A UTC time as pydantic writes it (the events of one bank batch share their times)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return json_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class Outbox:
    """Writes events into the caller's transaction; never commits. The one place outbox rows are
    built and written: a multi-row INSERT, or COPY for bulk on PostgreSQL, then one NOTIFY."""

    def __init__(self, table: Table, service: str, *, notify: bool) -> None:
        self.table = table
        self.service = service
        self.source = f"/benefits/{service}"
        self.notify = notify  # PostgreSQL wakes relays with NOTIFY; SQLite relays poll

    def rows(
        self,
        events: Iterable[Contract],
        *,
        correlation: str | None = None,
        traceparent: str | None = None,
        now: datetime | None = None,
    ) -> list[tuple[Any, ...]]:
        """Outbox rows (in `COLUMNS` order) for contract instances."""
        now = now or datetime.now(UTC)
        rows = []
        for payload in events:
            contract = CONTRACT_BY_MODEL[type(payload)]
            key = str(getattr(payload, contract.key_field))
            event_id, body = encode_event(
                contract.type, self.source, key, payload.model_dump(mode="json"), now
            )
            rows.append(
                (
                    lane_for(key),
                    event_id,
                    contract.type,
                    contract.topic,
                    key,
                    body,
                    correlation,
                    traceparent,
                    now,
                )
            )
        return rows

    def bulk_rows(
        self,
        model: type[Contract],
        items: Sequence[dict[str, Any]],
        *,
        correlation: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Outbox rows for the high-volume payment events, built from JSON-ready dicts without a
        pydantic round trip each. The first item is validated against its contract, so a drift
        between these dicts and the contract fails loudly instead of publishing bad events."""
        if not items:
            return []
        model.model_validate(items[0])
        contract = CONTRACT_BY_MODEL[model]
        now = datetime.now(UTC)
        stamp = json_time(now)
        event_type, topic, key_field, source = (
            contract.type,
            contract.topic,
            contract.key_field,
            self.source,
        )
        dumps = orjson.dumps
        # Event ids: a random 128-bit base per call and a counter, unique without a uuid4 each.
        base = uuid.uuid4().hex
        rows = []
        for n, data in enumerate(items):
            key = str(data[key_field])
            event_id = f"{base}-{n:x}"
            payload = dumps(
                {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": source,
                    "type": event_type,
                    "subject": key,
                    "time": stamp,
                    "datacontenttype": "application/json",
                    "data": data,
                }
            )
            rows.append(
                (lane_for(key), event_id, event_type, topic, key, payload, correlation, None, now)
            )
        return rows

    async def write(
        self, db: AsyncSession | AsyncConnection, rows: Sequence[tuple[Any, ...]]
    ) -> int:
        """Insert `rows` into the caller's transaction and wake the relays at its commit."""
        if not rows:
            return 0
        postgres = not is_sqlite(db)
        if postgres and len(rows) >= COPY_THRESHOLD:
            connection = await db.connection() if isinstance(db, AsyncSession) else db
            raw = await connection.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                self.table.name, records=rows, columns=list(COLUMNS)
            )
        else:
            await db.execute(
                insert(self.table), [dict(zip(COLUMNS, row, strict=True)) for row in rows]
            )
        if self.notify:
            # Delivered at commit only, so a relay never wakes for a rolled-back event.
            await db.execute(
                text("SELECT pg_notify(:channel, '')"), {"channel": notify_channel(self.service)}
            )
        return len(rows)

    async def add(
        self,
        db: AsyncSession | AsyncConnection,
        events: Iterable[Contract],
        traceparent: str | None = None,
    ) -> list[str]:
        rows = self.rows(
            events,
            correlation=current_correlation_id(),
            traceparent=traceparent or current_traceparent(),
        )
        await self.write(db, rows)
        return [row[1] for row in rows]

    async def add_bulk(
        self,
        db: AsyncSession | AsyncConnection,
        model: type[Contract],
        items: Sequence[dict[str, Any]],
    ) -> int:
        """One event of type `model` per item (its fields, JSON-ready)."""
        return await self.write(
            db, self.bulk_rows(model, items, correlation=current_correlation_id())
        )


def oldest_pending(pending: Select, outbox: Table, postgres: bool, limit: int) -> Select:
    """The ids of the `limit` oldest pending rows, found through the pending index. SQLite would
    walk the table in id order instead, through every published row kept for the retention
    (their payloads too), to reach the few pending at its end: ordering by an expression of the
    id makes it read the partial index and sort what is pending."""
    order = outbox.c.id if postgres else outbox.c.id + 0
    return pending.order_by(order).limit(limit)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Table,
        lanes: Table,
        producer: EventProducer,
        service: str,
        batch_size: int = 500,
        idle_poll_seconds: float = 0.5,
        retention: timedelta = timedelta(hours=24),
        lanes_per_claim: int = OUTBOX_LANES,
        pending_gauge_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.outbox = outbox
        self.lanes = lanes
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.idle_poll_seconds = 0.05 if is_sqlite(engine) else idle_poll_seconds
        self.retention = retention
        self.lanes_per_claim = lanes_per_claim
        self.pending_gauge_seconds = pending_gauge_seconds
        self.published_total = 0
        self._wake = asyncio.Event()

    async def publish_once(self) -> int:
        """Claim lanes, publish their oldest pending events, mark them sent; one transaction."""
        async with self.session_factory() as session, session.begin():
            pending = select(self.outbox.c.id).where(self.outbox.c.published_at.is_(None))
            postgres = not is_sqlite(self.engine)
            if not postgres:
                # A write first takes SQLite's database lock: relays then take turns, in id order.
                await session.execute(
                    update(self.lanes)
                    .where(self.lanes.c.lane == 0)
                    .values(failures=self.lanes.c.failures)
                )
            else:
                claimable = (
                    select(self.lanes.c.lane)
                    .where(
                        select(self.outbox.c.id)
                        .where(
                            self.outbox.c.lane == self.lanes.c.lane,
                            self.outbox.c.published_at.is_(None),
                        )
                        .exists()
                    )
                    .order_by(self.lanes.c.lane)
                    .limit(self.lanes_per_claim)
                    .with_for_update(skip_locked=True)
                )
                lane_filter = list((await session.execute(claimable)).scalars())
                if not lane_filter:
                    return 0
                pending = pending.where(self.outbox.c.lane.in_(lane_filter))
            ids_query = oldest_pending(pending, self.outbox, postgres, self.batch_size)
            rows = (
                await session.execute(
                    select(*(self.outbox.c[name] for name in RELAYED))
                    .where(self.outbox.c.id.in_(ids_query.scalar_subquery()))
                    .order_by(self.outbox.c.id)
                )
            ).all()
            if not rows:
                return 0
            await self.producer.publish([_record(row) for row in rows])
            await self.after_publish(len(rows))
            await session.execute(
                update(self.outbox)
                .where(one_of(postgres, self.outbox.c.id, [row[0] for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
        self.published_total += len(rows)
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def after_publish(self, count: int) -> None:
        """Between the bus's acknowledgement and marking the rows sent (a seam for crash tests)."""

    async def purge_published(self) -> int:
        cutoff = datetime.now(UTC) - self.retention
        async with self.session_factory() as session, session.begin():
            result = await session.execute(
                delete(self.outbox).where(
                    self.outbox.c.published_at.is_not(None), self.outbox.c.published_at < cutoff
                )
            )
        return cast(CursorResult[Any], result).rowcount or 0

    async def pending_count(self) -> int:
        async with self.session_factory() as session:
            return int(
                (
                    await session.execute(
                        select(text("count(*)"))
                        .select_from(self.outbox)
                        .where(self.outbox.c.published_at.is_(None))
                    )
                ).scalar_one()
            )

    async def run(self, stop: asyncio.Event) -> None:
        listener = None
        backoff = 0.1
        last_purge = asyncio.get_running_loop().time()
        next_count = 0.0
        try:
            while not stop.is_set():
                try:
                    if listener is None:
                        listener = await self._listen()
                    published = await self.publish_once()
                    backoff = 0.1
                    if published >= self.batch_size:
                        continue
                    if asyncio.get_running_loop().time() - last_purge > 60:
                        last_purge = asyncio.get_running_loop().time()
                        await self.purge_published()
                    if published > 0:
                        continue
                    now = asyncio.get_running_loop().time()
                    if now >= next_count:
                        # Counting walks the pending index (seconds at millions of rows), and an
                        # idle loop may only be waiting for lanes its siblings hold: a gauge.
                        next_count = now + self.pending_gauge_seconds
                        OUTBOX_PENDING.labels(self.service).set(await self.pending_count())
                except Exception as exc:
                    log.warning(
                        "outbox relay failed, backing off",
                        extra={"fields": {"error": type(exc).__name__, "backoff_s": backoff}},
                    )
                    # LISTEN again once the database is back.
                    await _close_quietly(listener)
                    listener = None
                    await sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self._wake.clear()
                await _wait_any(stop, self._wake, self.idle_poll_seconds)
        finally:
            await _close_quietly(listener)

    async def _listen(self) -> AsyncConnection | None:
        if is_sqlite(self.engine):
            return None
        conn = await self.engine.connect()
        try:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(notify_channel(self.service), lambda *_: self._wake.set())
        except Exception:
            await conn.close()
            return None
        return conn


async def _close_quietly(connection: AsyncConnection | None) -> None:
    if connection is not None:
        try:
            await connection.close()
        except Exception:  # it may already be gone with the database
            pass


# What the relay reads of a row, in this order (see `_record`).
RELAYED = ("id", "topic", "key", "event_type", "payload", "correlation_id", "traceparent")


def _record(row: Sequence[Any]) -> OutgoingRecord:
    """An outbox row, as `publish_once` selects it (`RELAYED`), as the record the bus sends. By
    position: a row's named access costs more than the rest of the relay's work on it."""
    _, topic, key, event_type, payload, correlation, traceparent = row
    headers = [(EVENT_TYPE_HEADER, event_type.encode())]
    if correlation:
        headers.append((CORRELATION_HEADER, correlation.encode()))
    if traceparent:
        headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return OutgoingRecord(topic, key.encode(), payload, tuple(headers))


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
