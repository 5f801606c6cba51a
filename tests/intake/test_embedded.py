"""The embedded default (SQLite + the embedded event log): the same service, no infrastructure."""

from __future__ import annotations

import asyncio

from services.intake.adapters.orm import outbox
from services.intake.settings import IntakeSettings
from shared.runtime import run_relay
from tests.intake import builders
from tests.intake.conftest import running_intake
from tests.support.waiting import wait_until


async def test_claim_decision_roll_and_relay_on_the_embedded_default(tmp_path):
    settings = IntakeSettings(data_dir=tmp_path)
    assert settings.database_url is None and settings.embedded
    async for intake in running_intake(settings):
        body = builders.claim()
        filed = await intake.post("/v1/claims", "portal", json=body)
        assert filed.status_code == 201, filed.text
        replay = await intake.post("/v1/claims", "portal", json=body)
        assert replay.headers["Idempotent-Replayed"] == "true"
        claim_id = filed.json()["claim_id"]
        decided = await intake.post(
            f"/v1/claims/{claim_id}/decision", "bhxh", json=builders.unemployment_approval()
        )
        assert decided.status_code == 200, decided.text
        roll = await intake.post("/v1/roll/uploads", "bhxh", json={"rows": [builders.roll_row()]})
        assert roll.json()["accepted"] == 1
        token = await intake.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("portal", "portal-dev-secret"),
        )
        assert token.status_code == 200
        assert await intake.count(outbox) == 8
        stop = asyncio.Event()
        relay = asyncio.ensure_future(run_relay(intake.app.state.runtime, stop))
        try:

            async def published(intake=intake):  # bound now: awaited within this iteration anyway
                return await intake.count(outbox, outbox.c.published_at.is_(None)) == 0

            await wait_until(
                published, timeout=30, message="the relay to publish to the embedded log"
            )
        finally:
            stop.set()
            await relay
