"""The payout's view of intake's events: each event applied once, schedules and stops, and the
command handlers' events written if and only if their transaction commits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from services.payout.adapters.orm import (
    beneficiaries,
    entitlements,
    installments,
    outbox,
    payment_methods,
    processed_messages,
    verifications,
)
from services.payout.service_layer.cycles import start_cycle
from shared.events.contracts import BENEFICIARY_TOPIC, BeneficiaryRegistered, EntitlementStopped
from shared.uow import unit_of_work
from tests.payout.harness import (
    COMMUNE,
    LIST_2023,
    VCB,
    accounts,
    intake_events,
    method_event,
    people,
    verified,
)
from tests.support.waiting import wait_until


class RolledBack(Exception):
    """Raised to end a unit of work without committing it."""


async def count(stack, table) -> int:
    async with stack.runtime.session_factory() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


class TestConsumer:
    async def test_same_events_delivered_twice_have_one_effect(self, payout, sandbox):
        stack = await payout(run_workers=False)
        persons = people(3, bank_bin=VCB)
        events = [e for p in persons for e in intake_events(p, start_period="2031-01")]
        await stack.feed(events, twice=True)
        await stack.deliver(stack.last_records)  # and again, in a later poll
        assert await count(stack, beneficiaries) == 3
        assert await count(stack, entitlements) == 3
        assert await count(stack, payment_methods) == 3
        assert await count(stack, verifications) == 3
        assert await count(stack, processed_messages) == 9  # 9 events, each applied once

    async def test_events_published_on_kafka_reach_the_view(self, payout, sandbox, kafka_bootstrap):
        stack = await payout(run_workers=False)
        # A fresh consumer group, placed at the end of intake's topic: only this test's events.
        probe = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            group_id=stack.consumer_name,
            enable_auto_commit=False,
        )
        await probe.start()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([BENEFICIARY_TOPIC])
        finally:
            await admin.close()
        try:
            partitions = [
                TopicPartition(BENEFICIARY_TOPIC, p["partition"])
                for p in described[0]["partitions"]
            ]
            assert partitions
            probe.assign(partitions)
            ends = await probe.end_offsets(partitions)
            await probe.commit(dict(ends))
        finally:
            await probe.stop()
        persons = people(5, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        stack.start_workers()
        import asyncio

        stack.tasks.append(asyncio.ensure_future(stack.consumer.run(stack.stop)))
        await stack.publish([e for p in persons for e in intake_events(p, start_period="2031-01")])

        async def arrived():
            return await count(stack, payment_methods) == 5

        await wait_until(arrived, timeout=30, message="events consumed from Kafka")
        await verified(stack, persons)
        assert (await stack.outbox_types())["account-verified"] == 5

    async def test_schedules_and_stops_decide_which_periods_pay(self, payout, sandbox):
        stack = await payout(run_workers=False)
        one_off, fixed, open_ended, stopped = (people(1, bank_bin=VCB, start=n) for n in range(4))
        events = (
            intake_events(one_off[0], start_period="2031-02", kind="ONE_OFF")
            + intake_events(
                fixed[0], start_period="2031-01", kind="FIXED_MONTHLY", installments_count=2
            )
            + intake_events(open_ended[0], start_period="2031-01")
            + intake_events(stopped[0], start_period="2031-01")
        )
        await stack.feed(events)
        await stack.feed(
            [
                EntitlementStopped(
                    entitlement_id=stopped[0].entitlement_id,
                    beneficiary_id=stopped[0].beneficiary_id,
                    reason="DEATH",
                    effective_period="2031-02",
                    stopped_at=datetime.now(UTC),
                )
            ]
        )
        counts = {}
        for period in ("2031-01", "2031-02", "2031-03"):
            counts[period] = (await stack.start_cycle(period))["installments"]["count"]
        assert counts == {"2031-01": 3, "2031-02": 3, "2031-03": 1}

    async def test_a_stop_cancels_installments_not_yet_sent(self, payout, sandbox):
        stack = await payout(run_workers=False)
        persons = people(2, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        await stack.start_cycle("2031-02")
        await stack.feed(
            [
                EntitlementStopped(
                    entitlement_id=persons[0].entitlement_id,
                    beneficiary_id=persons[0].beneficiary_id,
                    reason="RETURN_TO_WORK",
                    effective_period="2031-02",
                    stopped_at=datetime.now(UTC),
                )
            ]
        )
        assert await stack.states("2031-02") == {"CANCELLED": 1, "SCHEDULED": 1}
        stack.start_workers()
        progress = await stack.wait_complete("2031-02")
        assert progress["by_state"]["SETTLED"] == {"count": 1, "sum": persons[1].amount}
        bank = await sandbox.ledger()
        assert bank["credits"] == 1  # the batch was sent with its totals recomputed
        assert (await stack.outbox_types())["installment-cancelled"] == 1


class TestSetBasedBatches:
    """A poll's registrations, grants and method changes are applied set-based: the statements
    a batch takes do not grow with its size, and the result is the sequential one."""

    @staticmethod
    def statements_during(stack):
        engine = stack.runtime.engine.sync_engine
        executed: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):
            executed.append(statement)

        sa_event.listen(engine, "before_cursor_execute", count)
        return executed, lambda: sa_event.remove(engine, "before_cursor_execute", count)

    async def test_a_batch_takes_the_same_statements_at_ten_and_at_three_hundred(
        self, payout, sandbox
    ):
        stack = await payout(run_workers=False)
        taken = {}
        for size in (10, 300):
            persons = people(size, bank_bin=VCB)
            executed, stop = self.statements_during(stack)
            await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
            stop()
            taken[size] = len(executed)
        assert taken[300] == taken[10]
        assert await count(stack, beneficiaries) == 310
        assert await count(stack, verifications) == 310

    async def test_two_changes_of_one_person_in_one_batch_end_as_applied_one_after_the_other(
        self, payout, sandbox
    ):
        stack = await payout(run_workers=False)
        person = people(1, bank_bin=VCB)[0]
        renamed = BeneficiaryRegistered(
            beneficiary_id=person.beneficiary_id,
            full_name="Hoàng Thị Mới",
            commune_code=COMMUNE,
            commune_list_date=LIST_2023,
            registered_via="ROLL",
            registered_at=datetime.now(UTC),
        )
        second = replace(person, method_id=f"{person.method_id}-2", account_number="99887766")
        await stack.feed(
            [
                *intake_events(person, start_period="2031-01"),
                renamed,  # after the first account: a round of its own
                method_event(second),  # the same batch: supersedes the first verification
            ]
        )
        async with stack.runtime.session_factory() as session:
            rows = (
                await session.execute(
                    select(
                        verifications.c.method_id,
                        verifications.c.state,
                        verifications.c.expected_name,
                    ).order_by(verifications.c.id)
                )
            ).all()
            method = (await session.execute(select(payment_methods))).mappings().one()
        assert [tuple(r) for r in rows] == [
            (person.method_id, "SUPERSEDED", person.name),
            (second.method_id, "PENDING", "Hoàng Thị Mới"),
        ]
        assert method["method_id"] == second.method_id
        assert method["account_number"] == "99887766"

    async def test_a_bad_change_goes_to_the_dead_letter_topic_and_the_rest_of_the_batch_lands(
        self, payout, sandbox
    ):
        stack = await payout(run_workers=False)
        persons = people(3, bank_bin=VCB)
        # The third person's account reuses the first one's method id: the database refuses it.
        clash = replace(persons[2], method_id=persons[0].method_id)
        events = [e for p in persons[:2] for e in intake_events(p, start_period="2031-01")]
        await stack.feed([*events, *intake_events(clash, start_period="2031-01")])
        assert await count(stack, beneficiaries) == 3
        assert await count(stack, payment_methods) == 2
        assert stack.consumer.dead_lettered_total == 1


class TestCommandHandlerOutbox:
    async def test_start_cycle_commit_writes_events_rollback_writes_none(self, payout, sandbox):
        stack = await payout(run_workers=False)
        persons = people(4, bank_bin=VCB)
        for p in persons:
            p.method = "CASH_POST_OFFICE"
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        before = await count(stack, outbox)

        async def rolled_back(work):
            async with unit_of_work(
                stack.runtime.session_factory, stack.runtime.outbox, "test"
            ) as uow:
                await work(uow)
                await uow.flush()  # the events are in the transaction, and go with it
                raise RolledBack

        async def committed(work):
            async with unit_of_work(
                stack.runtime.session_factory, stack.runtime.outbox, "test"
            ) as uow:
                return await work(uow)

        with pytest.raises(RolledBack):
            await start_cycle(rolled_back, "2031-08", "test", 100, chunk_size=100)
        assert await count(stack, outbox) == before
        assert await count(stack, installments) == 0
        started = await start_cycle(committed, "2031-08", "test", 100, chunk_size=100)
        assert started.scheduled == 4
        assert await count(stack, outbox) == before + 4 + 1  # and the cycle's CycleOpened
        assert await count(stack, installments) == 4
