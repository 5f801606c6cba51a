"""Async engines and sessions for PostgreSQL (production) and SQLite (embedded default), and the
one home of the differences between the two dialects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for volume.
BigId = BigInteger().with_variant(Integer(), "sqlite")


Bind = str | AsyncEngine | AsyncConnection | AsyncSession


def is_sqlite(bind: Bind) -> bool:
    """Whether `bind` (a URL, an engine, a connection or a session) speaks SQLite."""
    if isinstance(bind, str):
        return bind.startswith("sqlite")
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name == "sqlite"
    return bind.dialect.name == "sqlite"


def is_postgres(bind: Bind) -> bool:
    return not is_sqlite(bind)


def insert_for(postgres: bool, table: Table) -> Any:
    """`INSERT` with the dialect's `ON CONFLICT` clauses (`on_conflict_do_nothing`/`_do_update`)."""
    return (postgresql.insert if postgres else sqlite.insert)(table)


def for_update(postgres: bool, query: Any, **options: Any) -> Any:
    """Row locks on PostgreSQL; SQLite serialises writers with its database lock instead."""
    return query.with_for_update(**options) if postgres else query


# The embedded event log commits consumer offsets with synchronous=FULL (shared/messaging/embedded.py).
# A service database must be at least as durable: with NORMAL, a power loss can drop the last
# inbox commit while the offset that follows it survives, and the event is never applied.
SQLITE_SYNCHRONOUS = "FULL"


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # hide_parameters: a database error's text never carries the bound values (names, CCCDs).
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, hide_parameters=True
    )


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
