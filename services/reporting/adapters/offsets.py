"""How far each topic partition reaches now: where a replay from the beginning has caught up."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

from shared.bus import PrefixedBus
from shared.messaging.embedded import EmbeddedBus
from shared.messaging.kafka import KafkaBus
from shared.messaging.ports import EventBus

Offsets = dict[tuple[str, int], int]


async def end_offsets(bus: EventBus, topics: Sequence[str]) -> Offsets:
    """The next offset to be written, per (topic, partition).

    A bus may answer itself (an `end_offsets(topics)` coroutine); otherwise Kafka and the embedded
    log are asked directly."""
    own = getattr(bus, "end_offsets", None)
    if own is not None:
        return await own(topics)
    if isinstance(bus, PrefixedBus):
        # The broker knows the prefixed names; the replay's positions carry the contract names.
        ends = await end_offsets(bus.inner, [bus.prefix + t for t in topics])
        return {(t.removeprefix(bus.prefix), p): o for (t, p), o in ends.items()}
    if isinstance(bus, KafkaBus):
        return await _kafka_end_offsets(bus.bootstrap_servers, topics)
    if isinstance(bus, EmbeddedBus):
        return await asyncio.to_thread(_embedded_end_offsets, str(bus.path), list(topics))
    raise TypeError(f"cannot read end offsets from {type(bus).__name__}")


async def _kafka_end_offsets(bootstrap_servers: str, topics: Sequence[str]) -> Offsets:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            known = consumer.partitions_for_topic(topic)
            if known is None:
                await consumer._client.force_metadata_update()
                known = consumer.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, p) for p in sorted(known)]
        if not partitions:
            return {}
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}
    finally:
        await consumer.stop()


def _embedded_end_offsets(path: str, topics: list[str]) -> Offsets:
    conn = sqlite3.connect(path, timeout=30)
    try:
        placeholders = ",".join("?" for _ in topics)
        rows = conn.execute(
            f"SELECT topic, partition, next_offset FROM partition_heads WHERE topic IN ({placeholders})",
            topics,
        ).fetchall()
    except sqlite3.OperationalError:  # the log has no topic yet
        return {}
    finally:
        conn.close()
    return {(topic, int(partition)): int(offset) for topic, partition, offset in rows}


def caught_up(positions: Offsets, ends: Offsets) -> bool:
    return all(positions.get(key, 0) >= end for key, end in ends.items() if end > 0)
