"""Each service running for real with a little data in it, so that fuzzed reads find rows and
not only 404s: intake with an approved claim, payout with a settled cycle (the bank sandbox as
a subprocess calling back its webhooks) and a reconciliation, reporting with a history of
claims and payments and a target."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.fuzz.runner import Known
from tests.fuzz.servers import SCOPES, ServiceServer, service_settings
from tests.intake import builders
from tests.support import tokens
from tests.support.sandbox import SandboxAdmin, SandboxProcess, free_port

SEED_PERIOD = "2031-04"


@dataclass(frozen=True)
class Target:
    service: str
    base_url: str
    headers: dict[str, str]
    known: list[Known] = field(default_factory=list)


@contextlib.asynccontextmanager
async def running(
    service: str, database_url: str | None, kafka: str | None, data_dir: Path
) -> AsyncIterator[Target]:
    """The service on these stores, seeded; yields where to reach it and valid credentials."""
    opener = {"intake": _intake, "payout": _payout, "reporting": _reporting}[service]
    async with opener(database_url, kafka, data_dir) as target:
        yield target


@contextlib.asynccontextmanager
async def _intake(
    database_url: str | None, kafka: str | None, data_dir: Path
) -> AsyncIterator[Target]:
    server = await ServiceServer(
        "intake",
        service_settings("intake", database_url=database_url, kafka=kafka, data_dir=data_dir),
    ).start()
    try:
        async with server.client() as client:
            claim = builders.claim()
            filed = await client.post("/v1/claims", json=claim)
            assert filed.status_code == 201, filed.text
            claim_id = filed.json()["claim_id"]
            decided = await client.post(
                f"/v1/claims/{claim_id}/decision", json=builders.unemployment_approval()
            )
            assert decided.status_code == 200, decided.text
            claim = (await client.get(f"/v1/claims/{claim_id}")).json()
            roll = await client.post(
                "/v1/roll/uploads",
                json={
                    "rows": [
                        builders.roll_row("PENSION"),
                        builders.roll_row("PENSION", national_id="not-a-cccd"),
                    ]
                },
            )
            assert roll.status_code == 201, roll.text
            methods = await client.post(
                "/v1/payment-methods/uploads",
                json={"rows": [{"national_id": "026000000000", "payment_method": "OWN_ACCOUNT"}]},
            )
            assert methods.status_code == 201, methods.text
        beneficiary = {"beneficiary_id": claim["beneficiary_id"]}
        known = [
            Known("GET", "/v1/claims/{claim_id}", {"claim_id": claim_id}),
            Known("GET", "/v1/claims", query={"status": claim["status"]}),
            Known(
                "GET",
                "/v1/entitlements/{entitlement_id}",
                {"entitlement_id": claim["entitlement_id"]},
            ),
            Known("GET", "/v1/beneficiaries/{beneficiary_id}", beneficiary),
            Known("GET", "/v1/beneficiaries/{beneficiary_id}/payment-methods", beneficiary),
            Known("GET", "/v1/roll/uploads/{upload_id}", {"upload_id": roll.json()["upload_id"]}),
            Known(
                "GET",
                "/v1/roll/uploads/{upload_id}/rejections.csv",
                {"upload_id": roll.json()["upload_id"]},
            ),
            Known(
                "GET",
                "/v1/payment-methods/uploads/{upload_id}",
                {"upload_id": methods.json()["upload_id"]},
            ),
            Known(
                "GET",
                "/v1/payment-methods/uploads/{upload_id}/rejections.csv",
                {"upload_id": methods.json()["upload_id"]},
            ),
        ]
        yield Target("intake", server.base_url, server.headers(), known)
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def _reporting(
    database_url: str | None, kafka: str | None, data_dir: Path
) -> AsyncIterator[Target]:
    from services.reporting.consumers.projections import projection_runner, read_control
    from tests.reporting.support.events import as_received, record
    from tests.reporting.support.scenarios import mixed_history

    server = await ServiceServer(
        "reporting",
        service_settings(
            "reporting",
            database_url=database_url,
            kafka=kafka,
            data_dir=data_dir,
            require_auth=True,
        ),
    ).start()
    try:
        runtime = server.runtime
        history, _ = mixed_history(beneficiaries=12, seed=3)
        generation = (await read_control(runtime)).generation
        runner = projection_runner(runtime, generation)
        dlq = runtime.bus.producer()
        await dlq.start()
        try:
            await runner.process(as_received([record(e) for e in history], 0), dlq)
        finally:
            await dlq.stop()
        async with server.client() as client:
            created = await client.post(
                "/v1/targets",
                json={
                    "code": "fuzz-urban-25",
                    "title_vi": "25% đô thị",
                    "title_en": "25% urban",
                    "area_type": "URBAN",
                    "area_level": "province",
                    "schemes": ["PENSION", "SI_ALLOWANCE"],
                    "target_percent": 25,
                    "deadline": "2023-12-31",
                },
            )
            assert created.status_code == 201, created.text
        target = {"target_id": created.json()["id"]}
        known = [
            Known("GET", "/v1/targets/{target_id}", target),
            Known("GET", "/v1/targets/{target_id}/progress", target, {"as_of": "2023-06"}),
            Known("GET", "/v1/kpis", query={"period": "2023-05"}),
            Known(
                "GET", "/v1/breakdowns/{dimension}", {"dimension": "commune"}, {"period": "2023-05"}
            ),
        ]
        yield Target("reporting", server.base_url, server.headers(), known)
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def _payout(
    database_url: str | None, kafka: str | None, data_dir: Path
) -> AsyncIterator[Target]:
    from tests.payout.harness import (
        AGRIBANK,
        VCB,
        PayoutStack,
        accounts,
        intake_events,
        payout_settings,
        people,
        verified,
    )

    api_port = free_port()
    sandbox = SandboxProcess(
        callback_base=f"http://127.0.0.1:{api_port}",
        extra_args=["--webhook-delay-ms", "10", "--webhook-retry-base-ms", "50"],
    )
    sandbox.start()
    admin = SandboxAdmin(sandbox.url)
    stack: PayoutStack | None = None
    try:
        settings = payout_settings(
            database_url,
            kafka,
            data_dir,
            api_port,
            sandbox.url,
            topic_prefix=service_settings(
                "payout", database_url=None, kafka=None, data_dir=data_dir
            ).topic_prefix,
        )
        stack = PayoutStack(settings, sandbox.url)
        await stack.start(run_workers=True)
        persons = people(4, bank_bin=VCB) + people(2, bank_bin=AGRIBANK)
        cash = people(1, bank_bin=VCB)
        for person in cash:
            person.method = "CASH_POST_OFFICE"
        await admin.seed_accounts(accounts(persons))
        await stack.feed(
            [e for p in persons + cash for e in intake_events(p, start_period="2031-01")]
        )
        await verified(stack, persons + cash)
        await stack.start_cycle(SEED_PERIOD)
        await stack.wait_complete(SEED_PERIOD)
        await admin.wait_callbacks_idle(timeout=20)
        token = tokens.token(set(SCOPES["payout"]), sub="fuzzer")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as client:
            reconciled = await client.post(
                "/v1/reconciliations",
                json={"counterparty": VCB, "date": datetime.now(UTC).date().isoformat()},
            )
            assert reconciled.status_code == 201, reconciled.text
            items = (await client.get("/v1/installments", params={"period": SEED_PERIOD})).json()[
                "items"
            ]
            batches = (await client.get("/v1/batches", params={"period": SEED_PERIOD})).json()[
                "items"
            ]
        known = [
            Known("GET", "/v1/cycles/{period}", {"period": SEED_PERIOD}),
            Known("GET", "/v1/installments/{installment_id}", {"installment_id": items[0]["id"]}),
            Known("GET", "/v1/batches/{batch_id}", {"batch_id": batches[0]["batch_id"]}),
            Known("GET", "/v1/reconciliations/{run_id}", {"run_id": reconciled.json()["id"]}),
            Known(
                "GET",
                "/v1/beneficiaries/{beneficiary_id}/payment-method",
                {"beneficiary_id": persons[0].beneficiary_id},
            ),
            Known(
                "GET",
                "/v1/beneficiaries/{beneficiary_id}/payment-method",
                {"beneficiary_id": cash[0].beneficiary_id},
            ),
        ]
        yield Target("payout", stack.api_url, headers, known)
    finally:
        if stack is not None:
            await stack.close()
        await admin.aclose()
        sandbox.stop()
