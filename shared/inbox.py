"""Idempotent consumers: the inbox of processed event ids is written in the same transaction as
the side effect, and offsets are committed only after that transaction. A redelivery is a no-op;
a poison message goes to `<topic>.dlq` with the reason in its headers and the partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bulk import chunks, insert_rows, one_of
from shared.db import is_postgres
from shared.events.contracts import Contract, UnknownEventType, contract_for, dead_letter_topic
from shared.events.envelope import (
    CORRELATION_HEADER,
    TRACEPARENT_HEADER,
    CloudEvent,
    MalformedEvent,
)
from shared.messaging.ports import (
    EventBus,
    EventProducer,
    OutgoingRecord,
    PublishFailed,
    ReceivedRecord,
)
from shared.metrics import CONSUMER_LAG, DEAD_LETTERS, EVENTS_APPLIED
from shared.observability import correlation_id, describe_error, validation_summary
from shared.tracing import span_from_traceparent
from shared.waiting import sleep_or_stop

log = logging.getLogger(__name__)


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_messages",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """A decoded, validated event as handlers see it."""

    event: CloudEvent
    payload: Contract
    record: ReceivedRecord


Handler = Callable[[AsyncSession, Delivery], Awaitable[None]]
BatchFinisher = Callable[
    [AsyncSession], Awaitable[None]
]  # after a batch's handlers, same transaction


class Poison(Exception):
    """This message can never be applied; it goes to the dead-letter topic."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ConsumerRunner:
    def __init__(
        self,
        name: str,
        topics: Sequence[str],
        handlers: dict[str, Handler],
        session_factory: async_sessionmaker[AsyncSession],
        inbox: Table,
        bus: EventBus,
        batch_size: int = 500,
        max_attempts: int = 5,
        ignore_types: Sequence[str] = (),
        finish_batch: BatchFinisher | None = None,
    ) -> None:
        self.name = name  # also the consumer group: <consuming-service>.<purpose>
        self.topics = list(topics)
        self.handlers = handlers
        self.session_factory = session_factory
        self.inbox = inbox
        self.bus = bus
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        # Known types on our topics that this consumer has no business with: skipped, not poison.
        self.ignore_types = set(ignore_types)
        # Handlers that only gather their deliveries apply them here, set-based, in the same
        # transaction as the inbox rows.
        self.finish_batch = finish_batch
        self.applied_total = 0
        self.dead_lettered_total = 0
        self.last_lag_seconds = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            consumer = self.bus.consumer(self.name, self.topics)
            dlq = self.bus.producer()
            try:
                await consumer.start()
                await dlq.start()
                while not stop.is_set():
                    records = await consumer.poll(self.batch_size, 200)
                    if not records:
                        continue
                    await self.process(records, dlq)
                    await consumer.commit(next_offsets(records))
                    backoff = 0.5
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "consumer paused by an outage, resuming from committed offsets",
                    extra={
                        "fields": {
                            "consumer": self.name,
                            "error": type(exc).__name__,
                            "backoff_s": backoff,
                        }
                    },
                )
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await _quietly(consumer.stop())
                await _quietly(dlq.stop())

    async def process(self, records: Sequence[ReceivedRecord], dlq: EventProducer) -> None:
        deliveries: list[Delivery] = []
        poison: list[tuple[ReceivedRecord, Poison]] = []
        for record in records:
            try:
                delivery = self._decode(record)
            except Poison as exc:
                poison.append((record, exc))
                continue
            if delivery is not None:
                deliveries.append(delivery)
        if poison:
            await self._dead_letter(dlq, poison)
        if not deliveries:
            return
        newest = max(d.event.time for d in deliveries)
        self.last_lag_seconds = max(0.0, (datetime.now(UTC) - newest).total_seconds())
        CONSUMER_LAG.labels(self.name).set(self.last_lag_seconds)
        try:
            await self._apply(deliveries)
        except Exception as exc:
            if is_transient(exc):
                raise  # nothing is committed; the batch comes back after the outage
            for delivery in deliveries:
                failure = await self._apply_with_retries(delivery)
                if failure is not None:
                    await self._dead_letter(dlq, [(delivery.record, failure)])

    def _decode(self, record: ReceivedRecord) -> Delivery | None:
        try:
            event = CloudEvent.from_json(record.value)
        except MalformedEvent as exc:
            raise Poison("malformed", str(exc)) from exc
        if event.type in self.ignore_types:
            return None
        try:
            contract = contract_for(event.type)
        except UnknownEventType as exc:
            raise Poison("unknown_type", str(exc)) from exc
        if event.type not in self.handlers:
            raise Poison("unhandled_type", f"{self.name} has no handler for {event.type}")
        try:
            payload = contract.model.model_validate(event.data)
        except ValidationError as exc:
            raise Poison("invalid_payload", validation_summary(exc)) from exc
        return Delivery(event, payload, record)

    async def _apply(self, deliveries: Sequence[Delivery]) -> None:
        async with self.session_factory() as session, session.begin():
            postgres = is_postgres(session)
            ids = list({d.event.id for d in deliveries})
            seen: set[str] = set()
            for some in chunks(postgres, ids):
                seen.update(
                    (
                        await session.execute(
                            select(self.inbox.c.event_id).where(
                                self.inbox.c.consumer == self.name,
                                one_of(postgres, self.inbox.c.event_id, some),
                            )
                        )
                    ).scalars()
                )
            fresh: list[Delivery] = []
            for delivery in deliveries:
                if delivery.event.id not in seen:
                    seen.add(delivery.event.id)  # a duplicate inside the same batch
                    fresh.append(delivery)
            if not fresh:
                return
            now = datetime.now(UTC)
            await session.execute(
                *insert_rows(
                    postgres,
                    insert(self.inbox),
                    [
                        {"consumer": self.name, "event_id": d.event.id, "processed_at": now}
                        for d in fresh
                    ],
                )
            )
            for delivery in fresh:
                token = correlation_id.set(delivery.record.header(CORRELATION_HEADER))
                try:
                    with span_from_traceparent(
                        self.name.split(".", 1)[0],
                        f"consume {delivery.event.type}",
                        delivery.record.header(TRACEPARENT_HEADER),
                        SpanKind.CONSUMER,
                        **{
                            "messaging.consumer.group.name": self.name,
                            "messaging.message.id": delivery.event.id,
                        },
                    ):
                        await self.handlers[delivery.event.type](session, delivery)
                finally:
                    correlation_id.reset(token)
            if self.finish_batch is not None:
                await self.finish_batch(session)
        self.applied_total += len(fresh)
        EVENTS_APPLIED.labels(self.name).inc(len(fresh))

    async def _apply_with_retries(self, delivery: Delivery) -> Poison | None:
        backoff = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply([delivery])
                return None
            except Poison as exc:
                return exc
            except Exception as exc:
                if is_transient(exc):
                    raise  # an outage is not the message's fault: never dead-letter for it
                if attempt == self.max_attempts:
                    # The header is kept with the message: the error's kind and place, never its text.
                    return Poison(
                        "handler_failed", f"after {attempt} attempts: {describe_error(exc)}"[:1000]
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        return None

    async def _dead_letter(
        self, dlq: EventProducer, items: Sequence[tuple[ReceivedRecord, Poison]]
    ) -> None:
        records = []
        for record, failure in items:
            log.warning(
                "dead-lettered a message",
                extra={
                    "fields": {
                        "consumer": self.name,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "reason": failure.reason,
                    }
                },
            )
            headers = (
                *(h for h in record.headers if not h[0].startswith("dlq-")),
                ("dlq-reason", failure.reason.encode()),
                ("dlq-error", failure.detail.encode()[:2000]),
                ("dlq-consumer", self.name.encode()),
                ("dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            )
            records.append(
                OutgoingRecord(
                    dead_letter_topic(record.topic), record.key or b"", record.value, headers
                )
            )
        await dlq.publish(records)
        self.dead_lettered_total += len(records)
        DEAD_LETTERS.labels(self.name).inc(len(records))


# SQLSTATE classes of failures that pass: connection (08), resources (53), operator intervention
# such as a shutdown (57), and serialization failures or deadlocks (40).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def is_transient(exc: BaseException) -> bool:
    """An outage of the database or the bus, not a defect of the message being applied."""
    if isinstance(
        exc,
        (OSError, ConnectionError, TimeoutError, asyncio.TimeoutError, KafkaError, PublishFailed),
    ):
        return True
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(
            getattr(exc.orig, "__cause__", None), "sqlstate", None
        )
        return bool(sqlstate) and str(sqlstate)[:2] in _TRANSIENT_SQLSTATE_CLASSES
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_transient(cause)


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        pass


def next_offsets(records: Sequence[ReceivedRecord]) -> dict[tuple[str, int], int]:
    offsets: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        offsets[key] = max(offsets.get(key, 0), r.offset + 1)
    return offsets
