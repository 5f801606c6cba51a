from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database

# An unset environment is production: the suite asks for development (and the processes it starts
# inherit it); tests of production say so, or remove these.
for _prefix in ("INTAKE", "PAYOUT", "PAYOUT_BANKS", "REPORTING"):
    os.environ.setdefault(f"{_prefix}_ENVIRONMENT", "development")


@pytest.fixture
async def pg_database() -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Factory of fresh PostgreSQL databases, dropped after the test; returns their URLs."""
    created: list[str] = []

    async def make(prefix: str = "db") -> str:
        name, url = await create_database(prefix)
        created.append(name)
        return url

    yield make
    for name in created:
        await drop_database(name)


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA_BOOTSTRAP
