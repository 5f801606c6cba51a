"""Business metrics of the event backbone, in the process-wide Prometheus registry so that the
workers' figures show on `/metrics` wherever they run in the same process as an API."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge

OUTBOX_PENDING = Gauge(
    "benefits_outbox_pending", "Outbox rows not yet published", ["service"], registry=REGISTRY
)
OUTBOX_PUBLISHED = Counter(
    "benefits_outbox_published_total",
    "Events published by the relay",
    ["service"],
    registry=REGISTRY,
)
EVENTS_APPLIED = Counter(
    "benefits_events_applied_total", "Events applied by a consumer", ["consumer"], registry=REGISTRY
)
CONSUMER_LAG = Gauge(
    "benefits_consumer_lag_seconds",
    "Age of the newest event in a consumer's last batch",
    ["consumer"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "benefits_dead_letters_total",
    "Messages sent to a dead-letter topic",
    ["consumer"],
    registry=REGISTRY,
)
BATCH_LEASES_LOST = Counter(
    "benefits_payout_batch_leases_lost_total",
    "Batch results discarded because another worker had taken the lease over",
    registry=REGISTRY,
)
