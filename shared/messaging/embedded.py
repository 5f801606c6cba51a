"""The embedded event log: a durable, partitioned, append-only log in one SQLite file.

It gives the same guarantees the services rely on from Kafka (per-key order, at-least-once
delivery, offsets committed by the consumer) for a single process on a machine with nothing
installed. One member per consumer group.
"""

from __future__ import annotations

import asyncio
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path

import orjson

from shared.db import SQLITE_SYNCHRONOUS
from shared.events.contracts import dead_letter_topic
from shared.messaging.ports import OutgoingRecord, ReceivedRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS partition_heads (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    key BLOB, value BLOB NOT NULL, headers BLOB NOT NULL,
    PRIMARY KEY (topic, partition, "offset")) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL, PRIMARY KEY (group_id, topic, partition));
"""

# Appends wake the consumers of the same file in this process at once instead of at the next poll.
_appended: dict[tuple[str, int], asyncio.Event] = {}


def _signal(path: str) -> asyncio.Event:
    loop_id = id(asyncio.get_running_loop())
    return _appended.setdefault((path, loop_id), asyncio.Event())


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")  # the same as the service databases
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(_SCHEMA)
    return conn


def partition_for(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes:
    return orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _decode_headers(raw: bytes) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, v.encode("latin-1")) for k, v in orjson.loads(raw))


class EmbeddedProducer:
    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._conn = await asyncio.to_thread(_connect, self._bus.path)

    async def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        assert self._conn is not None, "producer not started"
        async with self._lock:
            await asyncio.to_thread(self._append, list(records))
        _signal(str(self._bus.path)).set()

    def _append(self, records: list[OutgoingRecord]) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            partitions: dict[str, int] = {}
            for record in records:
                if record.topic not in partitions:
                    partitions[record.topic] = self._bus.create_topic(conn, record.topic)
                partition = partition_for(record.key, partitions[record.topic])
                (offset,) = conn.execute(
                    "UPDATE partition_heads SET next_offset = next_offset + 1 "
                    "WHERE topic = ? AND partition = ? RETURNING next_offset - 1",
                    (record.topic, partition),
                ).fetchone()
                conn.execute(
                    'INSERT INTO records (topic, partition, "offset", key, value, headers) '
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.topic,
                        partition,
                        offset,
                        record.key,
                        record.value,
                        _encode_headers(record.headers),
                    ),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class EmbeddedConsumer:
    def __init__(self, bus: EmbeddedBus, group_id: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._group_id = group_id
        self._topics = list(topics)
        self._conn: sqlite3.Connection | None = None
        self._positions: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        self._conn = await asyncio.to_thread(_connect, self._bus.path)
        await asyncio.to_thread(self._load_positions)

    async def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _load_positions(self) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for topic in self._topics:
                self._bus.create_topic(conn, topic)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        placeholders = ",".join("?" for _ in self._topics)
        self._positions = {}
        for topic, partitions in conn.execute(
            f"SELECT name, partitions FROM topics WHERE name IN ({placeholders})", self._topics
        ):
            for p in range(partitions):
                self._positions[(topic, p)] = 0
        for topic, partition, offset in conn.execute(
            f"SELECT topic, partition, next_offset FROM group_offsets "
            f"WHERE group_id = ? AND topic IN ({placeholders})",
            [self._group_id, *self._topics],
        ):
            self._positions[(topic, partition)] = offset

    def _read(self, max_records: int) -> list[ReceivedRecord]:
        conn = self._conn
        assert conn is not None
        out: list[ReceivedRecord] = []
        for (topic, partition), position in self._positions.items():
            if len(out) >= max_records:
                break
            rows = conn.execute(
                'SELECT "offset", key, value, headers FROM records '
                'WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (topic, partition, position, max_records - len(out)),
            ).fetchall()
            for offset, key, value, headers in rows:
                out.append(
                    ReceivedRecord(topic, partition, offset, key, value, _decode_headers(headers))
                )
            if rows:
                self._positions[(topic, partition)] = rows[-1][0] + 1
        return out

    async def poll(self, max_records: int, timeout_ms: int) -> list[ReceivedRecord]:
        assert self._conn is not None, "consumer not started"
        signal = _signal(str(self._bus.path))
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        while True:
            signal.clear()
            records = await asyncio.to_thread(self._read, max_records)
            remaining = deadline - asyncio.get_running_loop().time()
            if records or remaining <= 0:
                return records
            try:
                # Another process may append too: never wait longer than a short poll.
                await asyncio.wait_for(signal.wait(), timeout=min(remaining, 0.2))
            except TimeoutError:
                pass

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        if next_offsets:
            await asyncio.to_thread(self._commit, dict(next_offsets))

    def _commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO group_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(self._group_id, t, p, o) for (t, p), o in next_offsets.items()],
        )
        conn.execute("COMMIT")


class EmbeddedBus:
    def __init__(self, path: Path, partitions: int = 6) -> None:
        self.path = Path(path).resolve()
        self.partitions = partitions

    def create_topic(self, conn: sqlite3.Connection, topic: str) -> int:
        """Inside the caller's write transaction: create if missing, return its partition count."""
        row = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
        if row:
            return int(row[0])
        conn.execute(
            "INSERT INTO topics (name, partitions) VALUES (?, ?)", (topic, self.partitions)
        )
        conn.executemany(
            "INSERT INTO partition_heads (topic, partition, next_offset) VALUES (?, ?, 0)",
            [(topic, p) for p in range(self.partitions)],
        )
        return self.partitions

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        def create() -> None:
            conn = _connect(self.path)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for topic in topics:
                    self.create_topic(conn, topic)
                    self.create_topic(conn, dead_letter_topic(topic))
                conn.execute("COMMIT")
            finally:
                conn.close()

        await asyncio.to_thread(create)

    def producer(self) -> EmbeddedProducer:
        return EmbeddedProducer(self)

    def consumer(self, group_id: str, topics: Sequence[str]) -> EmbeddedConsumer:
        return EmbeddedConsumer(self, group_id, topics)

    async def group_lag(self, group_id: str, topics: Sequence[str]) -> int:
        def lag() -> int:
            conn = _connect(self.path)
            try:
                placeholders = ",".join("?" for _ in topics)
                (total,) = conn.execute(
                    f"SELECT COALESCE(SUM(h.next_offset - COALESCE(g.next_offset, 0)), 0) FROM partition_heads h "
                    f"LEFT JOIN group_offsets g ON g.group_id = ? AND g.topic = h.topic AND g.partition = h.partition "
                    f"WHERE h.topic IN ({placeholders})",
                    [group_id, *topics],
                ).fetchone()
                return int(total)
            finally:
                conn.close()

        return await asyncio.to_thread(lag)

    async def ping(self) -> bool:
        def check() -> bool:
            conn = _connect(self.path)
            try:
                conn.execute("SELECT 1").fetchone()
                return True
            finally:
                conn.close()

        try:
            return await asyncio.to_thread(check)
        except sqlite3.Error:
            return False
