"""Every state change's events reach the real Kafka through the outbox, exactly once; payout's
verification results are applied once, however often they are delivered."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import select

from services.intake.adapters.orm import (
    outbox,
    payment_method_history,
    payment_methods,
    processed_messages,
)
from services.intake.consumers.account_verification import account_verification_consumer
from shared.events.contracts import (
    ACCOUNT_VERIFICATION_TOPIC,
    BENEFICIARY_TOPIC,
    CLAIM_TOPIC,
    CONTRACT_BY_MODEL,
    AccountFlagged,
    AccountVerified,
)
from shared.events.envelope import EVENT_TYPE_HEADER, CloudEvent
from shared.runtime import run_relay
from tests.intake import builders
from tests.support.waiting import wait_until


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer._client.cluster.partitions_for_topic(topic) or set()


class TopicReader:
    """Reads the given topics from fixed offsets (no consumer group), keeping only our keys."""

    def __init__(self, bootstrap: str, start: dict[TopicPartition, int], keys: set[str]) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.start = start
        self.keys = keys
        self.events: list[CloudEvent] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        self.consumer.assign(list(self.start))
        for tp, offset in self.start.items():
            self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def read(self) -> list[CloudEvent]:
        batches = await self.consumer.getmany(timeout_ms=200, max_records=1000)
        for records in batches.values():
            for record in records:
                if record.key and record.key.decode() in self.keys:
                    self.events.append(CloudEvent.from_json(record.value))
        return self.events


def short(event_type: str) -> str:
    return event_type.split(".")[3]


class TestEventsReachKafkaExactlyOnce:
    async def test_each_change_publishes_its_events_once(self, intake, kafka_bootstrap):
        start = await end_offsets(kafka_bootstrap, [CLAIM_TOPIC, BENEFICIARY_TOPIC])
        # A claim, filed twice (the replay publishes nothing), approved, then stopped.
        body = builders.claim("VOCATIONAL_TRAINING")
        filed = (await intake.post("/v1/claims", "portal", json=body)).json()
        assert (await intake.post("/v1/claims", "portal", json=body)).status_code == 201
        approval = {
            "outcome": "APPROVED",
            "agency": "BHXH",
            "decision_number": f"QD-{uuid.uuid4().hex[:6]}",
            "amount_per_installment": 1_500_000,
            "schedule": {"kind": "FIXED_MONTHLY", "start_period": "2023-06", "installments": 3},
        }
        decided = (
            await intake.post(f"/v1/claims/{filed['claim_id']}/decision", "bhxh", json=approval)
        ).json()
        await intake.post(
            f"/v1/claims/{filed['claim_id']}/decision", "bhxh", json=approval
        )  # replay
        stop = {"reason": "RETURN_TO_WORK", "effective_period": "2023-07"}
        await intake.post(f"/v1/entitlements/{decided['entitlement_id']}/stop", "bhxh", json=stop)
        await intake.post(
            f"/v1/entitlements/{decided['entitlement_id']}/stop", "bhxh", json=stop
        )  # no-op
        # A rejected claim.
        rejected_body = builders.claim("UNEMPLOYMENT")
        rejected = (await intake.post("/v1/claims", "portal", json=rejected_body)).json()
        await intake.post(
            f"/v1/claims/{rejected['claim_id']}/decision",
            "bhxh",
            json={
                "outcome": "REJECTED",
                "agency": "BHXH",
                "reason_code": "EMPLOYED",
                "reason_text": "Đã có việc làm",
            },
        )
        # Two roll rows, uploaded twice (the second upload changes nothing).
        rows = [builders.roll_row("PENSION"), builders.roll_row("SI_ALLOWANCE")]
        roll = (await intake.post("/v1/roll/uploads", "bhxh", json={"rows": rows})).json()
        await intake.post("/v1/roll/uploads", "bhxh", json={"rows": rows})
        # A changed payment method.
        person = roll["rows"][0]["beneficiary_id"]
        await intake.put(
            f"/v1/beneficiaries/{person}/payment-method",
            "bhxh",
            json={
                "method": "OWN_ACCOUNT",
                "bank_bin": "970405",
                "account_number": builders.account(),
            },
        )

        claims = {filed["claim_id"], rejected["claim_id"]}
        people = {
            filed["beneficiary_id"],
            rejected["beneficiary_id"],
            *(r["beneficiary_id"] for r in roll["rows"]),
        }
        expected = Counter(
            {
                ("claim-received", filed["claim_id"]): 1,
                ("claim-decided", filed["claim_id"]): 1,
                ("claim-received", rejected["claim_id"]): 1,
                ("claim-decided", rejected["claim_id"]): 1,
                ("beneficiary-registered", filed["beneficiary_id"]): 1,
                ("beneficiary-registered", rejected["beneficiary_id"]): 1,
                ("entitlement-granted", filed["beneficiary_id"]): 1,
                ("payment-method-changed", filed["beneficiary_id"]): 1,
                ("entitlement-stopped", filed["beneficiary_id"]): 1,
                ("payment-method-changed", person): 2,
            }
        )
        for r in roll["rows"]:
            expected[("beneficiary-registered", r["beneficiary_id"])] += 1
            expected[("entitlement-granted", r["beneficiary_id"])] += 1
            expected[("payment-method-changed", r["beneficiary_id"])] += (
                1 if r["beneficiary_id"] != person else 0
            )

        stop_relay = asyncio.Event()
        relay = asyncio.ensure_future(run_relay(intake.app.state.runtime, stop_relay))
        try:
            async with TopicReader(kafka_bootstrap, start, claims | people) as reader:

                async def all_arrived():
                    events = await reader.read()
                    return len(events) >= sum(expected.values())

                await wait_until(all_arrived, timeout=60, message="intake's events on Kafka")
                await asyncio.sleep(0.5)  # a duplicate would show up now
                events = await reader.read()
        finally:
            stop_relay.set()
            await relay
        got = Counter((short(e.type), e.subject) for e in events)
        assert got == expected
        assert len({e.id for e in events}) == len(events), "no event published twice"
        decided_event = next(
            e for e in events if short(e.type) == "claim-decided" and e.subject == filed["claim_id"]
        )
        assert (
            decided_event.data["outcome"] == "APPROVED" and decided_event.data["installments"] == 3
        )
        granted = next(
            e
            for e in events
            if short(e.type) == "entitlement-granted" and e.subject == filed["beneficiary_id"]
        )
        assert granted.data["schedule"] == {
            "kind": "FIXED_MONTHLY",
            "start_period": "2023-06",
            "installments": 3,
        }
        roll_grant = next(
            e
            for e in events
            if short(e.type) == "entitlement-granted"
            and e.subject == roll["rows"][0]["beneficiary_id"]
        )
        assert (
            roll_grant.data["schedule"]["kind"] == "OPEN_MONTHLY"
            and roll_grant.data["decision_number"]
        )
        assert await intake.count(outbox, outbox.c.published_at.is_(None)) == 0


def _record(event: CloudEvent, key: str) -> dict:
    return {
        "value": event.to_json(),
        "key": key.encode(),
        "headers": [(EVENT_TYPE_HEADER, event.type.encode())],
    }


class TestVerificationConsumer:
    async def test_duplicate_verification_is_applied_once(self, intake, kafka_bootstrap):
        row = builders.roll_row("PENSION")
        report = (await intake.post("/v1/roll/uploads", "bhxh", json={"rows": [row]})).json()
        person = report["rows"][0]["beneficiary_id"]
        [method] = await intake.rows(
            select(payment_methods.c.id).where(payment_methods.c.beneficiary_id == person)
        )
        method_id = method.id
        runtime = intake.app.state.runtime
        group = f"intake.account-verification.test-{uuid.uuid4().hex[:8]}"

        # The fresh group starts at the topic's current end, not at its history.
        start = await end_offsets(kafka_bootstrap, [ACCOUNT_VERIFICATION_TOPIC])
        committer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        await committer.start()
        committer.assign(list(start))
        await committer.commit(dict(start.items()))
        await committer.stop()

        now = datetime.now(UTC)
        verified = CloudEvent(
            type=CONTRACT_BY_MODEL[AccountVerified].type,
            source="/benefits/payout",
            subject=person,
            data=AccountVerified(
                beneficiary_id=person, method_id=method_id, bank_bin="970436", verified_at=now
            ).model_dump(mode="json"),
        )
        flagged = CloudEvent(
            type=CONTRACT_BY_MODEL[AccountFlagged].type,
            source="/benefits/payout",
            subject=person,
            data=AccountFlagged(
                beneficiary_id=person,
                method_id=method_id,
                installment_id="i-1",
                reason_code="AC04",
                reason_text="Closed account",
                flagged_at=now,
            ).model_dump(mode="json"),
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for event in (verified, verified, verified):  # delivered three times
                await producer.send_and_wait(ACCOUNT_VERIFICATION_TOPIC, **_record(event, person))
        finally:
            await producer.stop()

        consumer = account_verification_consumer(runtime, name=group)
        stop = asyncio.Event()
        task = asyncio.ensure_future(consumer.run(stop))
        try:

            async def status_is(expected: str):
                rows = await intake.rows(
                    select(payment_methods.c.status).where(payment_methods.c.id == method_id)
                )
                return rows[0].status == expected

            await wait_until(
                lambda: status_is("VERIFIED"), timeout=60, message="the verification applied"
            )
            # A later event of the same beneficiary (same partition) proves the duplicates were read.
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
            await producer.start()
            try:
                await producer.send_and_wait(ACCOUNT_VERIFICATION_TOPIC, **_record(flagged, person))
            finally:
                await producer.stop()
            await wait_until(lambda: status_is("FLAGGED"), timeout=60, message="the flag applied")
        finally:
            stop.set()
            await task
        history = await intake.rows(
            select(payment_method_history.c.change)
            .where(payment_method_history.c.method_id == method_id)
            .order_by(payment_method_history.c.id)
        )
        assert [h.change for h in history] == ["CREATED", "VERIFIED", "FLAGGED"]
        recorded = await intake.rows(
            select(outbox.c.event_type).where(
                outbox.c.key == person, outbox.c.event_type.like("%verification-recorded%")
            )
        )
        assert len(recorded) == 2
        assert await intake.count(processed_messages, processed_messages.c.consumer == group) == 2
        view = (await intake.get(f"/v1/beneficiaries/{person}", "bhxh")).json()["payment_method"]
        assert view["status"] == "FLAGGED" and view["status_reason"] == "FLAGGED:AC04"
