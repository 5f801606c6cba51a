"""The Alembic history builds exactly the tables the code uses, on PostgreSQL and SQLite."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from services.reporting.adapters.orm import metadata
from services.reporting.bootstrap import MIGRATIONS
from shared.migrations import upgrade_to_head_async


async def differences(url: str) -> list:
    await upgrade_to_head_async(MIGRATIONS, url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await engine.dispose()


class TestMigrations:
    async def test_postgresql_schema_matches_the_tables(self, reporting_database):
        assert await differences(await reporting_database("repmig")) == []

    async def test_sqlite_schema_matches_the_tables(self, tmp_path):
        assert await differences(f"sqlite+aiosqlite:///{tmp_path / 'reporting.db'}") == []
