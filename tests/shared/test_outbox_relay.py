"""The relay publishes each key's events in id order, whichever transaction commits first and
whichever relay holds the lane: a pass never starts a lane past a row that is not yet visible."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, func, insert, select

from shared.db import make_engine, make_session_factory
from shared.outbox import (
    COLUMNS,
    OUTBOX_LANES,
    Outbox,
    OutboxRelay,
    lane_for,
    outbox_tables,
)
from tests.shared.test_unit_of_work import stopped


class Collected:
    """A producer that keeps what it is asked to publish."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.values: list[bytes] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records) -> None:
        self.keys.extend(r.key for r in records)
        self.values.extend(r.value for r in records)


@pytest.fixture
async def tables(pg_database):
    """On PostgreSQL, where several relays share the lanes."""
    url = await pg_database("relay")
    metadata = MetaData()
    table, lanes = outbox_tables(metadata)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(lanes), [{"lane": n} for n in range(OUTBOX_LANES)])
    yield engine, table, lanes
    await engine.dispose()


async def add(engine, table, n: int, row_id: int) -> None:
    """Event n in the row `row_id`: the id its transaction took, whenever it commits."""
    (row,) = Outbox(table, "test", notify=False).rows([stopped(n)])
    async with engine.begin() as conn:
        await conn.execute(insert(table), [{**dict(zip(COLUMNS, row, strict=True)), "id": row_id}])


def same_lane(count: int) -> list[int]:
    """Event numbers whose keys share one lane."""
    found = [n for n in range(1, 1000) if lane_for(f"ben-{n}") == lane_for("ben-1")]
    return found[:count]


async def test_a_key_whose_first_event_commits_late_keeps_its_order(tables):
    """A transaction takes id 100 for key K's first event, another takes 101 and commits first and
    is published; then the first commits with K's second event at 105: 100 goes before 105."""
    engine, table, lanes = tables
    producer = Collected()
    relay = OutboxRelay(
        engine, make_session_factory(engine), table, lanes, producer, service="test"
    )
    key, other_in_lane = same_lane(2)
    other = next(n for n in range(1, 1000) if lane_for(f"ben-{n}") != lane_for("ben-1"))
    await add(engine, table, other, row_id=101)
    await add(engine, table, other_in_lane, row_id=102)
    assert await relay.publish_once() == 2
    await add(engine, table, key, row_id=100)
    await add(engine, table, key, row_id=105)
    assert await relay.publish_once() == 2
    async with engine.connect() as conn:
        in_id_order = (
            await conn.execute(
                select(table.c.payload).where(table.c.id.in_([100, 105])).order_by(table.c.id)
            )
        ).scalars()
        assert producer.values[2:] == list(in_id_order)
    pending = select(func.count()).select_from(table).where(table.c.published_at.is_(None))
    async with engine.connect() as conn:
        assert (await conn.execute(pending)).scalar_one() == 0


async def test_a_lane_another_relay_held_keeps_its_order(tables):
    """Lane L is held (by another relay) while A publishes a later id elsewhere: L's rows still go
    out from its oldest, whichever relay publishes them."""
    engine, table, lanes = tables
    a, b = Collected(), Collected()
    factory = make_session_factory(engine)
    relay_a = OutboxRelay(engine, factory, table, lanes, a, service="test")
    relay_b = OutboxRelay(engine, factory, table, lanes, b, service="test")
    other = next(n for n in range(1, 1000) if lane_for(f"ben-{n}") != lane_for("ben-1"))
    one, two = same_lane(2)
    await add(engine, table, other, row_id=200)
    await add(engine, table, one, row_id=10)
    # B holds lane L (ben-1's) while A publishes the other lane's row 200.
    async with factory() as held, held.begin():
        await held.execute(
            select(lanes.c.lane).where(lanes.c.lane == lane_for("ben-1")).with_for_update()
        )
        assert await relay_a.publish_once() == 1
        assert a.keys == [f"ben-{other}".encode()]
    await add(engine, table, two, row_id=300)
    assert await relay_a.publish_once() == 2
    assert a.keys[1:] == [f"ben-{one}".encode(), f"ben-{two}".encode()]
    assert await relay_b.publish_once() == 0
