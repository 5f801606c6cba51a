"""API clients: the command line registers them (secrets hashed), the token endpoint serves them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from services.intake.adapters.orm import audit_log, clients
from services.intake.settings import IntakeSettings
from tests.intake.conftest import running_intake
from tests.support import tokens

ROOT = Path(__file__).resolve().parents[2]


async def cli(url: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "INTAKE_DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.intake",
        "clients",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_cli_registered_client_gets_tokens_and_production_seeds_nothing(
    pg_database, kafka_bootstrap, tmp_path
):
    url = await pg_database("intake")
    settings = IntakeSettings(
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=tmp_path,
        environment="production",
        **tokens.trust("intake"),
    )
    async for intake in running_intake(settings):
        assert await intake.count(clients) == 0, "no development clients outside development"
        code, out = await cli(
            url,
            "add",
            "--id",
            "portal-prod",
            "--secret",
            "s3cret-for-tests",
            "--scopes",
            "claims:write,claims:read",
        )
        assert code == 0, out
        [row] = await intake.rows(select(clients.c.secret_hash, clients.c.scopes))
        assert row.secret_hash.startswith("scrypt$") and "s3cret-for-tests" not in row.secret_hash
        assert row.scopes == "claims:read claims:write"
        token = await intake.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "portal-prod",
                "client_secret": "s3cret-for-tests",
            },
        )
        assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
        assert token.json()["scope"] == "claims:read claims:write"

        code, out = await cli(url, "add", "--id", "x", "--scopes", "claims:write bogus:scope")
        assert code == 2 and "unknown scope" in out
        code, _ = await cli(url, "disable", "--id", "portal-prod")
        assert code == 0
        refused = await intake.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("portal-prod", "s3cret-for-tests"),
        )
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        actions = [
            r.action for r in await intake.rows(select(audit_log.c.action).order_by(audit_log.c.id))
        ]
        assert actions == ["client.registered", "client.disabled"]


@pytest.mark.parametrize(
    "client_id",
    ["portal\x00", "p" * 101],
    ids=["a NUL character", "longer than any client id"],
)
async def test_a_client_id_no_client_can_have_is_refused_as_unknown(intake_on_both, client_id):
    for credentials in (
        {
            "data": {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": "x",
            }
        },
        {"data": {"grant_type": "client_credentials"}, "auth": (client_id, "x")},
    ):
        refused = await intake_on_both.http.post("/oauth/token", **credentials)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "invalid_client"
