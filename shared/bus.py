"""Choose the bus implementation from settings: Kafka when servers are given, else embedded."""
from __future__ import annotations

from shared.messaging.embedded import EmbeddedBus
from shared.messaging.kafka import KafkaBus
from shared.messaging.ports import EventBus
from shared.settings import ServiceSettings


def make_bus(settings: ServiceSettings) -> EventBus:
    if settings.kafka_bootstrap_servers:
        return KafkaBus(settings.kafka_bootstrap_servers, settings.topic_partitions, client_id=settings.service_name)
    return EmbeddedBus(settings.event_log_path, settings.topic_partitions)
