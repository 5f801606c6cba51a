"""The real Kafka bus, with this test's own copy of every topic.

Kafka's topics are shared by every test on the machine (and kept forever): a test that replays
them from the beginning would read everyone's events. This wrapper renames each topic to
`<namespace>.<topic>` on the way out and back, so the services above see the contract names while
the broker holds a private set, deleted at the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from aiokafka.admin import AIOKafkaAdminClient

from services.reporting.adapters.offsets import Offsets, end_offsets
from shared.events.contracts import dead_letter_topic
from shared.messaging.kafka import KafkaBus
from shared.messaging.ports import OutgoingRecord, ReceivedRecord


class _Producer:
    def __init__(self, bus: NamespacedBus) -> None:
        self._bus = bus
        self._inner = bus.inner.producer()

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        await self._inner.publish([replace(r, topic=self._bus.physical(r.topic)) for r in records])


class _Consumer:
    def __init__(self, bus: NamespacedBus, group_id: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._inner = bus.inner.consumer(
            f"{bus.namespace}.{group_id}", [bus.physical(t) for t in topics]
        )

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def poll(self, max_records: int, timeout_ms: int) -> list[ReceivedRecord]:
        records = await self._inner.poll(max_records, timeout_ms)
        return [replace(r, topic=self._bus.logical(r.topic)) for r in records]

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        await self._inner.commit(
            {(self._bus.physical(t), p): o for (t, p), o in next_offsets.items()}
        )


class NamespacedBus:
    def __init__(self, inner: KafkaBus, namespace: str) -> None:
        self.inner = inner
        self.namespace = namespace
        self.created: set[str] = set()

    def physical(self, topic: str) -> str:
        return f"{self.namespace}.{topic}"

    def logical(self, topic: str) -> str:
        prefix = f"{self.namespace}."
        return topic.removeprefix(prefix)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        physical = [self.physical(t) for t in topics]
        await self.inner.ensure_topics(physical)
        self.created |= {t for p in physical for t in (p, dead_letter_topic(p))}

    def producer(self) -> _Producer:
        return _Producer(self)

    def consumer(self, group_id: str, topics: Sequence[str]) -> _Consumer:
        return _Consumer(self, group_id, topics)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def end_offsets(self, topics: Sequence[str]) -> Offsets:
        ends = await end_offsets(self.inner, [self.physical(t) for t in topics])
        return {(self.logical(t), p): o for (t, p), o in ends.items()}

    async def delete_topics(self) -> None:
        if not self.created:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.inner.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics(sorted(self.created))
        finally:
            await admin.close()

    async def committed(self, group_id: str) -> Offsets:
        """The group's committed next offsets, per logical (topic, partition)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.inner.bootstrap_servers)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(f"{self.namespace}.{group_id}")
        finally:
            await admin.close()
        return {
            (self.logical(tp.topic), tp.partition): meta.offset
            for tp, meta in offsets.items()
            if meta.offset >= 0
        }
