"""Where a replay has caught up, on a bus whose topics carry a prefix (one province per prefix on
a shared cluster): the rebuild asks for the topics' ends by their contract names."""

from __future__ import annotations

from services.reporting.adapters.offsets import end_offsets
from shared.bus import PrefixedBus
from shared.messaging.embedded import EmbeddedBus
from shared.messaging.ports import OutgoingRecord

TOPIC = "payout.payment.v1"


class TestEndOffsets:
    async def test_a_prefixed_bus_answers_with_the_contract_topic_names(self, tmp_path):
        bus = PrefixedBus(EmbeddedBus(tmp_path / "log.sqlite3", partitions=1), "province-26.")
        await bus.ensure_topics([TOPIC])
        producer = bus.producer()
        await producer.start()
        await producer.publish([OutgoingRecord(TOPIC, b"k", b"{}", ()) for _ in range(3)])
        await producer.stop()
        assert await end_offsets(bus, [TOPIC]) == {(TOPIC, 0): 3}
