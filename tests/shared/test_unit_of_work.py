"""The unit of work: its boundary commits the change with its events, or neither; events are
stamped when written; one write serves single and bulk events."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import MetaData, select

from shared.db import make_engine
from shared.events.contracts import EntitlementStopped
from shared.outbox import Outbox, outbox_tables
from shared.uow import unit_of_work

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def stopped(n: int) -> EntitlementStopped:
    return EntitlementStopped(
        entitlement_id=f"ent-{n}",
        beneficiary_id=f"ben-{n}",
        reason="OTHER",
        effective_period="2026-01",
        stopped_at=LONG_AGO,
    )


@pytest.fixture
async def store(tmp_path):
    metadata = MetaData()
    table, _lanes = outbox_tables(metadata)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine, Outbox(table, "test", notify=False), table
    await engine.dispose()


async def events_in(engine, table) -> list[dict]:
    async with engine.connect() as conn:
        payloads = (await conn.execute(select(table.c.payload).order_by(table.c.id))).scalars()
        return [orjson.loads(p) for p in payloads]


async def test_the_boundary_commits_the_events(store):
    engine, outbox, table = store
    async with unit_of_work(engine, outbox, actor="test") as uow:
        uow.emit(stopped(1))
        uow.emit_bulk(EntitlementStopped, [stopped(2).model_dump(mode="json")])
    assert [e["data"]["entitlement_id"] for e in await events_in(engine, table)] == [
        "ent-1",
        "ent-2",
    ]


async def test_a_failed_block_writes_no_event(store):
    engine, outbox, table = store
    with pytest.raises(RuntimeError):
        async with unit_of_work(engine, outbox, actor="test") as uow:
            uow.emit(stopped(1))
            await uow.flush()
            raise RuntimeError("the change failed")
    assert await events_in(engine, table) == []


async def test_events_are_stamped_when_written_not_when_the_work_began(store):
    engine, outbox, table = store
    async with unit_of_work(engine, outbox, actor="test", now=LONG_AGO) as uow:
        assert uow.now == LONG_AGO
        uow.emit(stopped(1))
    [event] = await events_in(engine, table)
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")) > LONG_AGO
