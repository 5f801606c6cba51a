"""A cycle is created in chunks of entitlements, each its own transaction with its events, so
no process ever holds a whole cycle; run twice, or twice at once, it creates nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select

from services.payout.adapters.orm import batches, cycles, installments, outbox, payment_attempts
from services.payout.service_layer.cycles import make_installments, open_cycle, start_cycle
from shared.uow import UnitOfWork, unit_of_work
from tests.payout.harness import VCB, PayoutStack, intake_events, people

T = TypeVar("T")
PERIOD = "2031-07"


async def count(stack: PayoutStack, table: Any, *where: Any) -> int:
    assert stack.runtime is not None
    async with stack.runtime.session_factory() as session:
        return int(
            (await session.execute(select(func.count()).select_from(table).where(*where))).scalar()
        )


async def control_total(stack: PayoutStack) -> int:
    assert stack.runtime is not None
    async with stack.runtime.session_factory() as session:
        return int(
            (
                await session.execute(select(func.coalesce(func.sum(batches.c.control_count), 0)))
            ).scalar()
        )


def transactions(stack: PayoutStack) -> Callable[[Callable[[UnitOfWork], Awaitable[T]]], Any]:
    """A boundary that runs each piece of work in its own committed unit of work."""
    assert stack.runtime is not None
    runtime = stack.runtime

    async def transact(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with unit_of_work(runtime.session_factory, runtime.outbox, "test") as uow:
            return await work(uow)

    return transact


async def feed_people(stack: PayoutStack, n: int, cash: int = 0) -> None:
    persons = people(n, bank_bin=VCB)
    for person in persons[:cash]:
        person.method = "CASH_POST_OFFICE"
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])


class TestChunkedCreation:
    async def test_a_cycle_larger_than_a_chunk_is_made_in_several_bounded_transactions(
        self, payout, sandbox
    ):
        stack = await payout(run_workers=False)
        await feed_people(stack, 10, cash=10)  # cash needs no verification: all scheduled
        inner = transactions(stack)
        made: list[tuple[int, int]] = []  # (installments, events) each transaction added

        async def transact(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
            before = (await count(stack, installments), await count(stack, outbox))
            result = await inner(work)
            after = (await count(stack, installments), await count(stack, outbox))
            made.append((after[0] - before[0], after[1] - before[1]))
            return result

        started = await start_cycle(transact, PERIOD, "test", batch_size=50, chunk_size=3)

        assert started.created and started.new_installments == 10 and started.scheduled == 10
        creating = [m for m in made if m[0]]
        assert len(creating) == 4  # 3 + 3 + 3 + 1
        assert all(n <= 3 and events == n for n, events in creating)
        assert await count(stack, payment_attempts) == 10
        assert await control_total(stack) == 10
        assert await count(stack, cycles, cycles.c.creation_finished_at.is_not(None)) == 1

    async def test_a_chunk_rolled_back_leaves_no_installment_and_no_event(self, payout, sandbox):
        stack = await payout(run_workers=False)
        await feed_people(stack, 4, cash=4)
        assert stack.runtime is not None
        transact = transactions(stack)
        cycle_id, _ = await transact(lambda uow: open_cycle(uow, PERIOD, "test"))
        before = await count(stack, outbox)  # CycleOpened included

        class RolledBack(Exception):
            pass

        try:
            async with unit_of_work(
                stack.runtime.session_factory, stack.runtime.outbox, "test"
            ) as uow:
                chunk = await make_installments(uow, cycle_id, PERIOD, "", 10, 50)
                assert chunk.scheduled == 4
                await uow.flush()  # the events are in the transaction, and go with it
                raise RolledBack
        except RolledBack:
            pass
        assert await count(stack, outbox) == before
        assert await count(stack, installments) == 0
        await transact(lambda uow: make_installments(uow, cycle_id, PERIOD, "", 10, 50))
        assert await count(stack, outbox) == before + 4
        assert await count(stack, installments) == 4

    async def test_started_twice_at_once_each_installment_is_made_once(self, payout, sandbox):
        stack = await payout(run_workers=False)
        await feed_people(stack, 20, cash=20)
        transact = transactions(stack)

        first, second = await asyncio.gather(
            start_cycle(transact, PERIOD, "test", batch_size=4, chunk_size=3),
            start_cycle(transact, PERIOD, "test", batch_size=4, chunk_size=3),
        )

        assert sorted([first.created, second.created]) == [False, True]
        assert first.new_installments + second.new_installments == 20
        assert await count(stack, installments) == 20
        assert await count(stack, payment_attempts) == 20
        assert await control_total(stack) == 20
        assert (await stack.outbox_types())["installment-scheduled"] == 20
        again = await start_cycle(transact, PERIOD, "test", batch_size=4, chunk_size=3)
        assert not again.created and again.new_installments == 0 and again.batches == 0

    async def test_the_scheduler_finishes_a_cycle_whose_creation_stopped_halfway(
        self, payout, sandbox
    ):
        stack = await payout(run_workers=False, cycle_day=1, cycle_chunk_size=3)
        await feed_people(stack, 7, cash=7)
        transact = transactions(stack)
        cycle_id, _ = await transact(lambda uow: open_cycle(uow, PERIOD, "test"))
        await transact(lambda uow: make_installments(uow, cycle_id, PERIOD, "", 3, 50))
        assert await count(stack, installments) == 3  # then the process died

        assert stack.workers is not None
        resumed = await stack.workers.schedule_once(datetime(2031, 7, 10, 3, tzinfo=UTC))

        assert resumed is not None and resumed.new_installments == 4
        assert await count(stack, installments) == 7
        assert await count(stack, cycles, cycles.c.creation_finished_at.is_not(None)) == 1
        assert await stack.workers.schedule_once(datetime(2031, 7, 11, 3, tzinfo=UTC)) is None
