"""The relay's busy path starts after the last id it published; an event whose transaction took
its id first but committed after a later event was published must still go out."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import MetaData, func, insert, select

from shared.db import make_engine, make_session_factory
from shared.outbox import (
    COLUMNS,
    FULL_PASS_SECONDS,
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

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records) -> None:
        self.keys.extend(r.key for r in records)


@pytest.fixture
async def tables(pg_database):
    """On PostgreSQL, where a pass starts each lane after an id (SQLite drops a published row from
    its pending index at once: its passes are all full)."""
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


async def test_an_event_committed_after_a_later_one_was_published_still_goes_out(tables):
    engine, table, lanes = tables
    producer = Collected()
    relay = OutboxRelay(
        engine, make_session_factory(engine), table, lanes, producer, service="test"
    )
    first, late, later, last = same_lane(4)
    await add(engine, table, first, row_id=100)
    assert await relay.publish_once() == 1
    assert producer.keys == [f"ben-{first}".encode()]

    # Row 50's transaction took its id before row 100's but commits only now, with row 101.
    await add(engine, table, late, row_id=50)
    await add(engine, table, later, row_id=101)
    assert await relay.publish_once() == 1  # the lane entered after 100
    assert producer.keys[-1] == f"ben-{later}".encode()
    await asyncio.sleep(FULL_PASS_SECONDS)
    assert await relay.publish_once() == 1  # the full pass
    assert producer.keys[-1] == f"ben-{late}".encode()

    # With nothing after the lane's last id published, it waits for the next full pass.
    await add(engine, table, last, row_id=40)
    assert await relay.publish_once() == 0
    await asyncio.sleep(FULL_PASS_SECONDS)
    assert await relay.publish_once() == 1
    assert producer.keys[-1] == f"ben-{last}".encode()
    assert await relay.publish_once() == 0
    pending = select(func.count()).select_from(table).where(table.c.published_at.is_(None))
    async with engine.connect() as conn:
        assert (await conn.execute(pending)).scalar_one() == 0


async def test_a_lane_another_relay_held_is_entered_where_that_relay_left_it_pending(tables):
    """Relay A never entered lane L, held by B: A's first pass over L starts at its beginning,
    so L's events keep their order whichever relay publishes them."""
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
