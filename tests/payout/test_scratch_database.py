"""The scratch databases of the payout's tests and benchmark are dropped as the project's own
role (no superuser), even while sessions of that role are still connected to them."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from tests.support.infra import (
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_USER,
    create_database,
    drop_database,
)


async def connect(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, database=database
    )


class TestDropScratchDatabase:
    async def test_dropped_with_busy_and_idle_sessions_of_the_role_connected(self):
        name, _ = await create_database("drop")
        idle_in_transaction = await connect(name)
        await idle_in_transaction.execute(
            "BEGIN; CREATE TABLE t (id int); INSERT INTO t VALUES (1)"
        )
        busy = await connect(name)
        query = asyncio.ensure_future(busy.execute("SELECT pg_sleep(60)"))
        idle = await connect(name)
        try:
            await drop_database(name)

            admin = await connect("postgres")
            try:
                assert not await admin.fetchval(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                )
                assert not await admin.fetchval(
                    "SELECT count(*) FROM pg_database WHERE datname = $1", name
                )
            finally:
                await admin.close()
        finally:
            with contextlib.suppress(Exception):
                await query
            for connection in (idle_in_transaction, busy, idle):
                connection.terminate()

    async def test_dropping_a_database_already_gone_is_quiet(self):
        name, _ = await create_database("drop")
        await drop_database(name)
        await drop_database(name)
