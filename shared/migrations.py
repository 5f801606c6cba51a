"""Alembic, driven from code: every service keeps its own history under `migrations/`."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import is_sqlite
from shared.outbox import OUTBOX_LANES


def upgrade_to_head(script_location: Path, url: str) -> None:
    """Blocking; call it from a thread inside an event loop."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


async def upgrade_to_head_async(script_location: Path, url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, script_location, url)


def run_env(context: Any, metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py` (online mode only)."""
    url = context.config.get_main_option("sqlalchemy.url")
    # Bound parameters (names, CCCDs) stay out of migration errors, as in every other engine.
    engine = create_async_engine(url, poolclass=pool.NullPool, hide_parameters=True)

    def migrate(connection: sa.Connection) -> None:
        context.configure(
            connection=connection, target_metadata=metadata, render_as_batch=is_sqlite(url)
        )
        with context.begin_transaction():
            if not is_sqlite(url):
                # Two processes starting at once must not both run the same migration.
                lock_id = zlib.crc32(str(context.script.dir).encode())
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
            context.run_migrations()

    async def run() -> None:
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())


def create_messaging_tables(op: Any) -> None:
    """Outbox, outbox lanes and inbox: the same in every service's first migration."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "outbox",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("lane", sa.SmallInteger, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column("traceparent", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["lane", "id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    lanes = op.create_table(
        "outbox_lanes",
        sa.Column("lane", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )
    op.bulk_insert(lanes, [{"lane": n, "failures": 0} for n in range(OUTBOX_LANES)])
    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_messaging_tables(op: Any) -> None:
    op.drop_table("processed_messages")
    op.drop_table("outbox_lanes")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
