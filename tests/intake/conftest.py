from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.intake.bootstrap import MIGRATIONS, create_app
from services.intake.settings import IntakeSettings
from shared.auth import issue_token
from shared.migrations import upgrade_to_head_async

AGENCY = (
    "claims:read",
    "decisions:write",
    "roll:write",
    "payment-methods:write",
    "beneficiaries:read",
)
TOKENS: dict[str, tuple[str, tuple[str, ...]]] = {
    "portal": ("portal", ("claims:write", "claims:read")),
    "bhxh": ("bhxh", (*AGENCY, "agency:BHXH")),
    "dolisa": ("dolisa", (*AGENCY, "agency:DOLISA")),
    "admin": (
        "admin",
        (
            "claims:write",
            "claims:read",
            "decisions:write",
            "roll:write",
            "payment-methods:write",
            "beneficiaries:read",
            "pii:read",
            "audit:read",
        ),
    ),
}


@dataclass
class Intake:
    app: FastAPI
    http: httpx.AsyncClient
    settings: IntakeSettings

    def auth(self, who: str) -> dict[str, str]:
        client_id, scopes = TOKENS[who]
        return {
            "Authorization": f"Bearer {issue_token(self.app.state.signing_key, client_id, scopes)}"
        }

    async def post(self, path: str, who: str, **kwargs: Any) -> httpx.Response:
        return await self.http.post(
            path, headers={**self.auth(who), **kwargs.pop("headers", {})}, **kwargs
        )

    async def get(self, path: str, who: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(who), **kwargs)

    async def put(self, path: str, who: str, **kwargs: Any) -> httpx.Response:
        return await self.http.put(path, headers=self.auth(who), **kwargs)

    async def count(self, table, *where) -> int:
        async with self.app.state.runtime.engine.connect() as conn:
            return (
                await conn.execute(select(func.count()).select_from(table).where(*where))
            ).scalar_one()

    async def rows(self, query) -> list:
        async with self.app.state.runtime.engine.connect() as conn:
            return list(await conn.execute(query))


async def running_intake(settings: IntakeSettings) -> AsyncIterator[Intake]:
    await upgrade_to_head_async(MIGRATIONS, settings.resolved_database_url())
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
            yield Intake(app, http, settings)


@pytest.fixture
async def intake(pg_database, kafka_bootstrap, tmp_path) -> AsyncIterator[Intake]:
    url = await pg_database("intake")
    settings = IntakeSettings(
        database_url=url, kafka_bootstrap_servers=kafka_bootstrap, data_dir=tmp_path
    )
    async for running in running_intake(settings):
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
async def intake_on_both(request, pg_database, kafka_bootstrap, tmp_path) -> AsyncIterator[Intake]:
    """The service on the embedded SQLite default, then on PostgreSQL."""
    if request.param == "sqlite":
        settings = IntakeSettings(data_dir=tmp_path)
    else:
        url = await pg_database("intake")
        settings = IntakeSettings(
            database_url=url, kafka_bootstrap_servers=kafka_bootstrap, data_dir=tmp_path
        )
    async for running in running_intake(settings):
        yield running
