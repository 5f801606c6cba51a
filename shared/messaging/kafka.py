"""Apache Kafka implementation of the bus ports (aiokafka)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from shared.events.contracts import dead_letter_topic
from shared.messaging.ports import OutgoingRecord, PublishFailed, ReceivedRecord

log = logging.getLogger(__name__)


class KafkaProducerAdapter:
    def __init__(self, bootstrap_servers: str, client_id: str = "benefits") -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=15000,
        )
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Group the records per partition (Kafka's own key hash) and send them as whole batches:
        far cheaper than one send() per record, and the order within a partition is kept."""
        try:
            by_partition: dict[tuple[str, int], list[OutgoingRecord]] = {}
            partitions: dict[str, list[int]] = {}
            for record in records:
                if record.topic not in partitions:
                    partitions[record.topic] = sorted(
                        await self._producer.partitions_for(record.topic)
                    )
                all_partitions = partitions[record.topic]
                partition = self._partitioner(record.key, all_partitions, all_partitions)
                by_partition.setdefault((record.topic, partition), []).append(record)
            futures = []
            for (topic, partition), group in by_partition.items():
                batch = self._producer.create_batch()
                for record in group:
                    while (
                        batch.append(
                            key=record.key,
                            value=record.value,
                            timestamp=None,
                            headers=list(record.headers),
                        )
                        is None
                    ):
                        futures.append(
                            await self._producer.send_batch(batch, topic, partition=partition)
                        )
                        batch = self._producer.create_batch()
                futures.append(await self._producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise PublishFailed(str(exc)) from exc


class KafkaConsumerAdapter:
    def __init__(self, bootstrap_servers: str, group_id: str, topics: Sequence[str]) -> None:
        self._topics = list(topics)
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2000,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, max_records: int, timeout_ms: int) -> list[ReceivedRecord]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        received: list[ReceivedRecord] = []
        for messages in batches.values():
            for m in messages:
                received.append(
                    ReceivedRecord(
                        m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ())
                    )
                )
        return received

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        if next_offsets:
            await self._consumer.commit(
                {TopicPartition(t, p): o for (t, p), o in next_offsets.items()}
            )


class KafkaBus:
    def __init__(
        self, bootstrap_servers: str, partitions: int = 6, client_id: str = "benefits"
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.client_id = client_id

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        wanted = {t for topic in topics for t in (topic, dead_letter_topic(topic))}
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = sorted(wanted - existing)
            if missing:
                try:
                    await admin.create_topics(
                        [
                            # Kept forever: the read models are rebuilt by replaying the topics.
                            NewTopic(
                                t,
                                num_partitions=self.partitions,
                                replication_factor=1,
                                topic_configs={"retention.ms": "-1"},
                            )
                            for t in missing
                        ]
                    )
                except TopicAlreadyExistsError:
                    pass
        finally:
            await admin.close()

    def producer(self) -> KafkaProducerAdapter:
        return KafkaProducerAdapter(self.bootstrap_servers, self.client_id)

    def consumer(self, group_id: str, topics: Sequence[str]) -> KafkaConsumerAdapter:
        return KafkaConsumerAdapter(self.bootstrap_servers, group_id, topics)

    async def group_lag(self, group_id: str, topics: Sequence[str]) -> int:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False)
        await admin.start()
        await probe.start()
        try:
            committed = await admin.list_consumer_group_offsets(group_id)
            described = await admin.describe_topics(list(topics))
            partitions = [
                TopicPartition(d["topic"], p["partition"])
                for d in described
                if not d.get("error_code")
                for p in d.get("partitions", ())
            ]
            ends = await probe.end_offsets(partitions)
            return sum(
                max(
                    0,
                    end
                    - (
                        committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                    ),
                )
                for tp, end in ends.items()
            )
        finally:
            await probe.stop()
            await admin.close()

    async def ping(self) -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, request_timeout_ms=3000
        )
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.list_topics(), 5)
            return True
        except Exception:
            return False
        finally:
            try:
                await admin.close()
            except Exception:
                pass
