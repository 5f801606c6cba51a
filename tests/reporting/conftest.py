from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from tests.reporting.support.harness import Reporting, open_reporting, settings_for
from tests.reporting.support.scenarios import Expected, mixed_history
from tests.support.infra import create_database, drop_database
from tests.support.waiting import wait_until


async def drop_when_free(name: str) -> None:
    """An autovacuum worker busy on a just-filled database cannot be terminated by a non-superuser:
    the drop is retried until it has finished."""

    async def dropped() -> bool:
        try:
            await drop_database(name)
        except asyncpg.InsufficientPrivilegeError:
            return False
        return True

    await wait_until(dropped, 30, interval=0.5, message=f"database {name} dropped")


@pytest.fixture
async def reporting_database() -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Fresh PostgreSQL databases, dropped afterwards."""
    created: list[str] = []

    async def make(prefix: str = "rep") -> str:
        name, url = await create_database(prefix)
        created.append(name)
        return url

    yield make
    for name in created:
        await drop_when_free(name)


@pytest.fixture(scope="module")
async def fed_reporting(tmp_path_factory) -> AsyncIterator[tuple[Reporting, Expected]]:
    """One PostgreSQL read model fed with the mixed history, shared by a module's read-only tests."""
    name, url = await create_database("repm")
    try:
        async with open_reporting(settings_for(tmp_path_factory.mktemp("fed"), url)) as reporting:
            payloads, expected = mixed_history()
            await reporting.feed(payloads)
            yield reporting, expected
    finally:
        await drop_when_free(name)


@pytest.fixture
async def reporting_pg(tmp_path, reporting_database) -> AsyncIterator[Reporting]:
    """PostgreSQL read models, fed directly (no broker needed): API and query tests."""
    async with open_reporting(settings_for(tmp_path, await reporting_database("rep"))) as reporting:
        yield reporting


@pytest.fixture
async def reporting_kafka(
    tmp_path, reporting_database, kafka_bootstrap
) -> AsyncIterator[Reporting]:
    """PostgreSQL and the real Kafka broker (private topics for this test)."""
    settings = settings_for(tmp_path, await reporting_database("repk"), kafka_bootstrap)
    async with open_reporting(settings, namespace_kafka=True) as reporting:
        yield reporting


@pytest.fixture
async def reporting_embedded(tmp_path) -> AsyncIterator[Reporting]:
    """The embedded default: SQLite and the embedded event log under a data directory."""
    async with open_reporting(settings_for(tmp_path)) as reporting:
        yield reporting
