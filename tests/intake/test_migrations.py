"""Intake's Alembic history builds exactly the tables the code uses, on PostgreSQL and SQLite."""

from __future__ import annotations

from services.intake.adapters.orm import metadata
from services.intake.bootstrap import MIGRATIONS
from tests.support.schema import schema_differences


async def differences(url: str) -> list:
    return await schema_differences(MIGRATIONS, metadata, url)


class TestMigrations:
    async def test_postgresql_schema_matches_the_tables(self, pg_database):
        assert await differences(await pg_database("intakemig")) == []

    async def test_sqlite_schema_matches_the_tables(self, tmp_path):
        assert await differences(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}") == []
