"""Payout's business metrics read from its database at scrape time, so that every API process
shows the same figures whichever worker process recorded them."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.payout.adapters.repository import reads

log = logging.getLogger(__name__)

ANOMALIES = Gauge(
    "benefits_payout_anomalies",
    "Payment anomalies recorded by payout, by kind",
    ["kind"],
    registry=REGISTRY,
)


async def refresh(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Set the gauges from the database; if it does not answer, the last figures stay."""
    try:
        async with session_factory() as session:
            counts = await reads.anomaly_counts(session)
    except Exception as exc:
        log.warning("payout metrics not refreshed", extra={"fields": {"error": type(exc).__name__}})
        return
    ANOMALIES.clear()
    for kind, count in counts.items():
        ANOMALIES.labels(kind).set(count)
