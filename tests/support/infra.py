"""The real PostgreSQL and Kafka the suite runs against (started by scripts/infra.sh)."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

PG_HOST = os.environ.get("BENEFITS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENEFITS_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BENEFITS_TEST_PG_USER", "benefits")
PG_PASSWORD = os.environ.get("BENEFITS_TEST_PG_PASSWORD", "benefits")
KAFKA_BOOTSTRAP = os.environ.get("BENEFITS_TEST_KAFKA", "127.0.0.1:9092")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def sqlalchemy_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/{database}"


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, database="postgres"
    )


async def create_database(prefix: str) -> tuple[str, str]:
    """A throwaway database: returns (name, SQLAlchemy URL)."""
    name = unique(f"t_{prefix}")
    conn = await _admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, sqlalchemy_url(name)


async def drop_database(name: str) -> None:
    conn = await _admin()
    try:
        await drop_scratch_database(conn, name)
    finally:
        await conn.close()


async def drop_scratch_database(admin: asyncpg.Connection, name: str, attempts: int = 50) -> None:
    """Drop a test or benchmark database as the project's role. `WITH (FORCE)` would also try to
    end autovacuum's workers, which only a superuser may; so end this role's own sessions on it,
    then a plain DROP, which stops autovacuum by itself; retry while a session lingers."""
    for attempt in range(attempts):
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND usename = current_user AND pid <> pg_backend_pid()",
            name,
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except asyncpg.ObjectInUseError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)
