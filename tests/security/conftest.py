"""Fixtures of the security tests: the three services served for real (uvicorn on free ports) on
fresh PostgreSQL databases and Kafka with topics of their own, for the whole module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.fuzz.servers import ServiceServer, service_settings
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database


@pytest_asyncio.fixture(scope="module")
async def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, ServiceServer]]:
    """The three services (reporting asking for a token on reads too), by name."""
    started: dict[str, ServiceServer] = {}
    databases: list[str] = []
    try:
        for service, overrides in (
            ("intake", {}),
            ("payout", {}),
            ("reporting", {"require_auth": True}),
        ):
            name, url = await create_database(f"security_{service}")
            databases.append(name)
            started[service] = await ServiceServer(
                service,
                service_settings(
                    service,
                    database_url=url,
                    kafka=KAFKA_BOOTSTRAP,
                    data_dir=tmp_path_factory.mktemp(service),
                    **overrides,
                ),
            ).start()
        yield started
    finally:
        for server in started.values():
            await server.stop()
        for name in databases:
            await drop_database(name)
