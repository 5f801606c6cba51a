"""The event backbone's guarantees, proven on both implementations: PostgreSQL + Kafka (the real
stack) and SQLite + the embedded event log (the embedded default)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from shared.events.contracts import BENEFICIARY_TOPIC, dead_letter_topic
from shared.events.envelope import CloudEvent
from shared.messaging.ports import OutgoingRecord
from shared.runtime import Runtime, run_relay
from tests.support import probe
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Backend:
    def __init__(
        self, kind: str, database_url: str | None, kafka: str | None, data_dir: Path
    ) -> None:
        self.kind = kind
        self.database_url = database_url
        self.kafka = kafka
        self.data_dir = data_dir
        self.topic_prefix = f"t{uuid.uuid4().hex[:8]}." if kafka else ""
        self.settings = probe.probe_settings(database_url, kafka, data_dir, self.topic_prefix)
        self.processes: list[subprocess.Popen] = []

    def spawn(self, role: str, *extra: str) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "tests.support.probe_worker",
            role,
            "--data-dir",
            str(self.data_dir),
            "--topic-prefix",
            self.topic_prefix,
            *extra,
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        if self.kafka:
            args += ["--kafka", self.kafka]
        process = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.processes.append(process)
        return process

    def cleanup(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture(params=["embedded", "postgres+kafka"])
async def backend(request, tmp_path, pg_database, kafka_bootstrap) -> AsyncIterator[Backend]:
    if request.param == "embedded":
        b = Backend("embedded", None, None, tmp_path)
    else:
        b = Backend("postgres+kafka", await pg_database("probe"), kafka_bootstrap, tmp_path)
    yield b
    b.cleanup()


@pytest.fixture
async def runtime(backend: Backend) -> AsyncIterator[Runtime]:
    rt = await probe.open_probe(backend.settings)
    yield rt
    await rt.close()


class Running:
    """Background tasks (relays, consumers) stopped at the end of a test."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self, coro) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    r = Running()
    yield r
    await r.close()


def keyspace() -> str:
    return uuid.uuid4().hex[:8]


async def write_events(
    runtime: Runtime, key_prefix: str, keys: int, per_key: int, *, commit: bool = True
) -> None:
    async with runtime.session_factory() as session:
        async with session.begin():
            for seq in range(per_key):
                events = [probe.stopped(f"{key_prefix}-{k}", seq) for k in range(keys)]
                await runtime.outbox.add(session, events)
            await session.execute(insert(probe.widgets).values(id=f"{key_prefix}-widget"))
            if not commit:
                await session.rollback()


async def own_effects(runtime: Runtime, consumer: str, key_prefix: str) -> probe.Applied:
    effects = await probe.applied_effects(runtime, consumer)
    mine = {k: v for k, v in effects.by_key.items() if k.startswith(key_prefix)}
    total = sum(len(v) for v in mine.values())
    return probe.Applied(total, total, mine)


class TestPublishIffCommit:
    async def test_rolled_back_transaction_publishes_nothing(self, runtime, running):
        ks = keyspace()
        await write_events(runtime, f"{ks}-rb", keys=3, per_key=2, commit=False)
        await write_events(runtime, f"{ks}-ok", keys=2, per_key=3, commit=True)
        consumer_name = f"probe.{ks}"
        running.start(run_relay(runtime, running.stop))
        running.start(probe.consumer(runtime, consumer_name).run(running.stop))

        async def committed_ones_arrived():
            effects = await own_effects(runtime, consumer_name, ks)
            return effects if effects.total >= 6 else None

        effects = await wait_until(committed_ones_arrived, message="the committed events")
        await asyncio.sleep(0.5)  # a late, wrong delivery would show up now
        effects = await own_effects(runtime, consumer_name, ks)
        assert sorted(effects.by_key) == [f"{ks}-ok-0", f"{ks}-ok-1"]
        assert effects.total == 6
        assert await runtime.relay().pending_count() == 0


class TestRelayCrash:
    async def test_relay_killed_after_ack_redelivers_and_consumer_applies_once(
        self, backend, runtime, running
    ):
        ks = keyspace()
        await write_events(runtime, ks, keys=4, per_key=5)
        crashing = backend.spawn("relay", "--crash-after-publish")
        assert crashing.wait(timeout=60) == -signal.SIGKILL
        assert await runtime.relay().pending_count() == 20, "the rows stay pending after the crash"

        backend.spawn("relay")
        consumer_name = f"probe.{ks}"
        running.start(probe.consumer(runtime, consumer_name).run(running.stop))

        async def all_applied():
            return (
                await runtime.relay().pending_count() == 0
                and (await own_effects(runtime, consumer_name, ks)).total >= 20
            )

        await wait_until(all_applied, timeout=60, message="redelivery after the relay crash")
        await asyncio.sleep(0.5)
        effects = await own_effects(runtime, consumer_name, ks)
        assert effects.total == 20, (
            "each event applied exactly once although it was published twice"
        )
        for seqs in effects.by_key.values():
            assert seqs == list(range(5))


class TestConsumerCrash:
    async def test_consumer_killed_mid_batch_resumes_without_loss_or_duplicates(
        self, backend, runtime, running
    ):
        ks = keyspace()
        await write_events(runtime, ks, keys=10, per_key=30)  # 300 events
        running.start(run_relay(runtime, running.stop))
        consumer_name = f"probe.{ks}"
        first = backend.spawn(
            "consume", "--consumer-name", consumer_name, "--delay-per-event", "0.01"
        )

        async def some_applied():
            return (await probe.applied_effects(runtime, consumer_name)).total > 0

        await wait_until(some_applied, timeout=60, message="the first committed batch")
        first.send_signal(signal.SIGKILL)
        first.wait()
        before_restart = (await own_effects(runtime, consumer_name, ks)).total
        assert before_restart < 300, "killed before finishing"

        backend.spawn("consume", "--consumer-name", consumer_name)

        async def all_applied():
            return (await own_effects(runtime, consumer_name, ks)).total >= 300

        await wait_until(all_applied, timeout=90, message="all events after the restart")
        await asyncio.sleep(0.5)
        effects = await own_effects(runtime, consumer_name, ks)
        assert effects.total == 300
        for seqs in effects.by_key.values():
            assert seqs == list(range(30)), "per-key order survives the crash"


class TestPoisonMessage:
    async def test_poison_goes_to_dead_letter_and_later_messages_are_processed(
        self, runtime, running
    ):
        ks = keyspace()
        key = f"{ks}-0".encode()
        good_before = probe.stopped(f"{ks}-0", 0)
        good_after = probe.stopped(f"{ks}-0", 1)
        unknown_version = CloudEvent(
            type="vn.benefits.intake.entitlement-stopped.v9",
            source="/test",
            subject=f"{ks}-0",
            data={},
        ).to_json()
        invalid_payload = CloudEvent(
            type=probe.STOPPED_TYPE,
            source="/test",
            subject=f"{ks}-0",
            data={"beneficiary_id": f"{ks}-0"},
        ).to_json()

        def envelope(payload) -> bytes:
            return CloudEvent(
                type=probe.STOPPED_TYPE,
                source="/test",
                subject=f"{ks}-0",
                data=payload.model_dump(mode="json"),
            ).to_json()

        producer = runtime.bus.producer()
        await producer.start()
        try:
            await producer.publish(
                [
                    OutgoingRecord(BENEFICIARY_TOPIC, key, envelope(good_before)),
                    OutgoingRecord(BENEFICIARY_TOPIC, key, b"\x00\xffnot json at all"),
                    OutgoingRecord(BENEFICIARY_TOPIC, key, unknown_version),
                    OutgoingRecord(BENEFICIARY_TOPIC, key, invalid_payload),
                    OutgoingRecord(BENEFICIARY_TOPIC, key, envelope(good_after)),
                ]
            )
        finally:
            await producer.stop()

        consumer_name = f"probe.{ks}"
        runner = probe.consumer(runtime, consumer_name)
        running.start(runner.run(running.stop))

        async def both_good_applied():
            return (await own_effects(runtime, consumer_name, ks)).total >= 2

        await wait_until(both_good_applied, message="the good messages around the poison")
        assert (await own_effects(runtime, consumer_name, ks)).by_key == {f"{ks}-0": [0, 1]}

        dlq = runtime.bus.consumer(f"probe.dlq.{ks}", [dead_letter_topic(BENEFICIARY_TOPIC)])
        await dlq.start()
        reasons: list[str] = []
        try:

            async def three_dead_letters():
                for record in await dlq.poll(500, 500):
                    if record.key == key and record.header("dlq-consumer") == consumer_name:
                        reasons.append(record.header("dlq-reason") or "")
                return len(reasons) >= 3

            await wait_until(three_dead_letters, message="three dead letters")
        finally:
            await dlq.stop()
        assert sorted(reasons) == ["invalid_payload", "malformed", "unknown_type"]


class TestPerKeyOrder:
    async def test_two_relays_keep_each_keys_order_across_partitions(self, runtime, running):
        ks = keyspace()
        consumer_name = f"probe.{ks}"
        running.start(run_relay(runtime, running.stop))
        running.start(run_relay(runtime, running.stop))
        running.start(probe.consumer(runtime, consumer_name).run(running.stop))
        for seq in range(20):  # many small transactions while both relays run
            async with runtime.session_factory() as session, session.begin():
                await runtime.outbox.add(
                    session, [probe.stopped(f"{ks}-{k}", seq) for k in range(12)]
                )

        async def all_applied():
            return (await own_effects(runtime, consumer_name, ks)).total >= 240

        await wait_until(all_applied, timeout=60, message="240 events")
        effects = await own_effects(runtime, consumer_name, ks)
        assert effects.total == 240
        assert len(effects.by_key) == 12
        for seqs in effects.by_key.values():
            assert seqs == list(range(20))


class TestRedelivery:
    async def test_same_event_delivered_twice_has_one_effect(self, runtime):
        ks = keyspace()
        runner = probe.consumer(runtime, f"probe.{ks}")
        event = CloudEvent(
            type=probe.STOPPED_TYPE,
            source="/test",
            subject=f"{ks}-0",
            data=probe.stopped(f"{ks}-0", 0).model_dump(mode="json"),
        )
        from shared.messaging.ports import ReceivedRecord

        record = ReceivedRecord(BENEFICIARY_TOPIC, 0, 1, f"{ks}-0".encode(), event.to_json())
        dlq = runtime.bus.producer()
        await dlq.start()
        try:
            await runner.process([record, record], dlq)  # twice in one batch
            await runner.process([record], dlq)  # and once more later
        finally:
            await dlq.stop()
        assert (await own_effects(runtime, f"probe.{ks}", ks)).total == 1


class TestGroupLag:
    async def test_lag_counts_what_the_group_has_not_committed(self, runtime, running):
        ks = keyspace()
        group = f"probe.{ks}"
        await write_events(runtime, ks, keys=3, per_key=4)
        running.start(run_relay(runtime, running.stop))

        async def published():
            return await runtime.relay().pending_count() == 0

        await wait_until(published, message="the relay to publish")
        assert await runtime.bus.group_lag(group, [BENEFICIARY_TOPIC]) == 12
        running.start(probe.consumer(runtime, group).run(running.stop))

        async def caught_up():
            return await runtime.bus.group_lag(group, [BENEFICIARY_TOPIC]) == 0

        await wait_until(caught_up, message="the group to catch up")
        assert (await own_effects(runtime, group, ks)).total == 12
