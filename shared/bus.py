"""Choose the bus implementation from settings: Kafka when servers are given, else embedded.

A topic prefix, when set, namespaces every topic and consumer group (for example one province per prefix on a
shared cluster, or an isolated set of topics per test run); services never see it.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.messaging.embedded import EmbeddedBus
from shared.messaging.kafka import KafkaBus
from shared.messaging.ports import (
    EventBus,
    EventConsumer,
    EventProducer,
    OutgoingRecord,
    ReceivedRecord,
)
from shared.settings import ServiceSettings


def make_bus(settings: ServiceSettings) -> EventBus:
    bus: EventBus
    if settings.kafka_bootstrap_servers:
        bus = KafkaBus(
            settings.kafka_bootstrap_servers,
            settings.topic_partitions,
            client_id=settings.service_name,
        )
    else:
        bus = EmbeddedBus(settings.event_log_path, settings.topic_partitions)
    return PrefixedBus(bus, settings.topic_prefix) if settings.topic_prefix else bus


class _PrefixedProducer:
    def __init__(self, inner: EventProducer, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        prefix = self._prefix
        await self._inner.publish(
            [OutgoingRecord(prefix + r.topic, r.key, r.value, r.headers) for r in records]
        )


class _PrefixedConsumer:
    def __init__(self, inner: EventConsumer, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def poll(self, max_records: int, timeout_ms: int) -> list[ReceivedRecord]:
        cut = len(self._prefix)
        return [
            ReceivedRecord(r.topic[cut:], r.partition, r.offset, r.key, r.value, r.headers)
            for r in await self._inner.poll(max_records, timeout_ms)
        ]

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        await self._inner.commit({(self._prefix + t, p): o for (t, p), o in next_offsets.items()})


class PrefixedBus:
    def __init__(self, inner: EventBus, prefix: str) -> None:
        self._inner = inner
        self.prefix = prefix

    @property
    def inner(self) -> EventBus:
        """The bus that knows the prefixed names (a replay asks it how far the topics reach)."""
        return self._inner

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        await self._inner.ensure_topics([self.prefix + t for t in topics])

    def producer(self) -> EventProducer:
        return _PrefixedProducer(self._inner.producer(), self.prefix)

    def consumer(self, group_id: str, topics: Sequence[str]) -> EventConsumer:
        return _PrefixedConsumer(
            self._inner.consumer(self.prefix + group_id, [self.prefix + t for t in topics]),
            self.prefix,
        )

    async def ping(self) -> bool:
        return await self._inner.ping()

    async def group_lag(self, group_id: str, topics: Sequence[str]) -> int:
        return await self._inner.group_lag(
            self.prefix + group_id, [self.prefix + t for t in topics]
        )
