"""Statements over many rows (shared/bulk.py) on PostgreSQL, where they travel as arrays: rows
keep their order and values, and a value too long for its column is refused, never cut."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError

from shared.bulk import insert_rows, one_of, update_by_key
from shared.db import insert_for, make_engine

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(8), nullable=True),
)


@pytest.fixture
async def engine(pg_database):
    engine = make_engine(await pg_database("bulk"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_rows_go_in_as_given_and_are_found_by_an_array(engine):
    rows = [{"id": 3, "name": "ba"}, {"id": 1, "name": None}, {"id": 2, "name": "Đồng"}]
    async with engine.begin() as conn:
        await conn.execute(*insert_rows(True, insert_for(True, things), rows))
        await conn.execute(
            *update_by_key(True, things, "id", ("name",), [{"id": 1, "name": "một"}])
        )
        found = (
            await conn.execute(
                select(things.c.id, things.c.name)
                .where(one_of(True, things.c.id, [1, 2]))
                .order_by(things.c.id)
            )
        ).all()
    assert [tuple(r) for r in found] == [(1, "một"), (2, "Đồng")]


@pytest.mark.parametrize("how", ["insert", "update", "lookup"])
async def test_a_value_too_long_for_its_column_is_refused_not_cut(engine, how):
    long = "x" * 9
    async with engine.begin() as conn:
        await conn.execute(
            *insert_rows(True, insert_for(True, things), [{"id": 1, "name": "x" * 8}])
        )
    async with engine.begin() as conn:
        if how == "lookup":
            # Cut to eight characters, the value would match the row.
            found = await conn.execute(
                select(things.c.id).where(one_of(True, things.c.name, [long]))
            )
            assert found.all() == []
            return
        with pytest.raises(DBAPIError):
            if how == "insert":
                statement = insert_rows(True, insert_for(True, things), [{"id": 2, "name": long}])
            else:
                statement = update_by_key(True, things, "id", ("name",), [{"id": 1, "name": long}])
            await conn.execute(*statement)
