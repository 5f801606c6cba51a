"""The event bus as the services see it: a producer that returns once records are durable,
and a consumer group member that polls and commits explicitly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None


class PublishFailed(RuntimeError):
    """The bus did not acknowledge every record; nothing may be marked as sent."""


class EventProducer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Return once every record is durably acknowledged, in order per key."""


class EventConsumer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def poll(self, max_records: int, timeout_ms: int) -> list[ReceivedRecord]: ...
    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Commit, per (topic, partition), the offset of the next record to read."""


class EventBus(Protocol):
    async def ensure_topics(self, topics: Sequence[str]) -> None: ...
    def producer(self) -> EventProducer: ...
    def consumer(self, group_id: str, topics: Sequence[str]) -> EventConsumer: ...
    async def ping(self) -> bool: ...
    async def group_lag(self, group_id: str, topics: Sequence[str]) -> int:
        """Records on `topics` the group has not committed yet (0: it has caught up)."""
