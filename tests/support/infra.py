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


async def drop_database(name: str, attempts: int = 20) -> None:
    """Autovacuum on a freshly filled database blocks a non-superuser's forced drop: retry."""
    for attempt in range(attempts):
        conn = await _admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.InsufficientPrivilegeError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
        finally:
            await conn.close()
