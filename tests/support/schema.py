"""What a service's Alembic history builds, compared with the tables its code uses."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrations import upgrade_to_head_async


async def schema_differences(migrations: Path, metadata: MetaData, url: str) -> list:
    """Migrate the database at `url` to head, then list how it differs from `metadata`."""
    await upgrade_to_head_async(migrations, url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await engine.dispose()
