"""Restarting the broker and the database in the middle of a run (`scripts/kafka.sh restart`,
`scripts/postgres.sh restart`), and waiting until both answer again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
RESTART_SCRIPTS = {"kafka_restart": "kafka.sh", "postgres_restart": "postgres.sh"}


@dataclass(frozen=True, slots=True)
class ScriptRun:
    returncode: int
    seconds: float
    output: str


async def run_script(
    script: str, *args: str, log_path: Path | None = None, timeout: float = 240
) -> ScriptRun:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        str(SCRIPTS / script),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        out = (out or b"") + f"\n{script} {' '.join(args)}: gave up after {timeout} s\n".encode()
        returncode = -1
    else:
        returncode = process.returncode if process.returncode is not None else -1
    text = (out or b"").decode(errors="replace")
    if log_path is not None:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"===== {script} {' '.join(args)} (exit {returncode}) =====\n{text}\n")
    return ScriptRun(returncode, round(time.monotonic() - started, 2), text)


async def restart(kind: str, log_path: Path | None = None) -> ScriptRun:
    """`kind` is `kafka_restart` or `postgres_restart`."""
    return await run_script(RESTART_SCRIPTS[kind], "restart", log_path=log_path)


async def healthy() -> bool:
    postgres = await run_script("postgres.sh", "status", timeout=30)
    kafka = await run_script("kafka.sh", "status", timeout=30)
    return postgres.returncode == 0 and kafka.returncode == 0


async def wait_healthy(timeout: float = 180) -> float:
    """Wait until PostgreSQL and Kafka both answer; returns the seconds waited."""
    started = time.monotonic()
    while not await healthy():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"PostgreSQL or Kafka still not answering after {timeout} s")
        await asyncio.sleep(1.0)
    return round(time.monotonic() - started, 2)


async def dead_letters(bootstrap: str, topic: str, timeout: float = 60) -> list[dict[str, str]]:
    """Every record of a dead-letter topic: the event's id and type and why it was put there
    (never the payload)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, str]] = []
    try:
        await consumer.topics()  # metadata
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return found
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout

        async def behind() -> bool:
            for partition, end in ends.items():
                if await consumer.position(partition) < end:
                    return True
            return False

        while await behind() and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [_dead_letter(record.value, record.headers or ()) for record in records]
    finally:
        await consumer.stop()
    return found


def _dead_letter(value: bytes, headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    named = {key: raw.decode(errors="replace") for key, raw in headers}
    try:
        event = json.loads(value)
    except ValueError:
        event = {}
    error = named.get("dlq-error", "")
    return {
        "event_id": str(event.get("id", "")),
        "type": str(event.get("type", "")),
        "reason": named.get("dlq-reason", ""),
        "consumer": named.get("dlq-consumer", ""),
        "source": named.get("dlq-source", ""),
        "error": error.splitlines()[0][:200] if error else "",
    }
