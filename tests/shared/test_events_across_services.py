"""Intake's events as payout receives them, on PostgreSQL + Kafka: what intake accepts, payout can
keep (the contract's limits hold on both sides), and what goes on the bus, which keeps it for ever,
carries no CCCD, date of birth or social-insurance number."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from services.intake.adapters.orm import claims as intake_claims
from services.intake.adapters.orm import entitlements as intake_entitlements
from services.intake.adapters.orm import outbox as intake_outbox
from services.intake.adapters.orm import payment_methods as intake_methods
from services.intake.settings import IntakeSettings
from services.payout.adapters.orm import metadata as payout_metadata
from services.payout.adapters.orm import payment_methods as payout_methods
from services.payout.bootstrap import MIGRATIONS as PAYOUT_MIGRATIONS
from services.payout.consumers.intake_view import intake_view_consumer
from services.payout.settings import PayoutSettings
from shared.events.contracts import (
    BENEFICIARY_TOPIC,
    CLAIM_TOPIC,
    MAX_VND,
    CashReason,
    DecisionNumber,
    max_length_of,
)
from shared.events.envelope import CloudEvent
from shared.migrations import upgrade_to_head_async
from shared.runtime import Runtime, run_relay
from tests.intake import builders
from tests.intake.conftest import Intake, running_intake
from tests.support import tokens
from tests.support.waiting import wait_until


@dataclass
class Services:
    intake: Intake
    payout: Runtime
    stop: asyncio.Event


@pytest.fixture
async def services(pg_database, kafka_bootstrap, tmp_path) -> AsyncIterator[Services]:
    """Intake and payout's intake view on their own PostgreSQL databases and their own Kafka topics,
    with intake's relay and payout's consumer running."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    intake_settings = IntakeSettings(
        environment="development",
        database_url=await pg_database("xs_intake"),
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=tmp_path / "intake",
        topic_prefix=prefix,
        **tokens.trust("intake"),
    )
    payout_settings = PayoutSettings(
        environment="development",
        database_url=await pg_database("xs_payout"),
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=tmp_path / "payout",
        topic_prefix=prefix,
        topic_partitions=2,
        **tokens.trust("payout"),
    )
    await upgrade_to_head_async(PAYOUT_MIGRATIONS, payout_settings.resolved_database_url())
    payout = await Runtime.open(payout_settings, payout_metadata)
    stop = asyncio.Event()
    try:
        async for intake in running_intake(intake_settings):
            tasks = [
                asyncio.ensure_future(run_relay(intake.app.state.runtime, stop)),
                asyncio.ensure_future(intake_view_consumer(payout).run(stop)),
            ]
            try:
                yield Services(intake, payout, stop)
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await payout.close()


def text_of_length(length: int) -> str:
    """Vietnamese text of exactly `length` characters."""
    phrase = "Không thể tự giao dịch, không có người được ủy quyền; "
    return (phrase * (length // len(phrase) + 1))[:length]


async def payout_method(payout: Runtime, beneficiary_id: str) -> dict[str, Any] | None:
    async with payout.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(payout_methods).where(payout_methods.c.beneficiary_id == beneficiary_id)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


async def read_topic(runtime: Runtime, topics: list[str], until: int) -> list[CloudEvent]:
    """Every record of these topics (from the beginning, this test's own topics), as CloudEvents."""
    consumer = runtime.bus.consumer(f"reader.{uuid.uuid4().hex[:8]}", topics)
    await consumer.start()
    events: list[CloudEvent] = []
    try:

        async def all_read() -> bool:
            events.extend(CloudEvent.from_json(r.value) for r in await consumer.poll(500, 500))
            return len(events) >= until

        await wait_until(all_read, timeout=60, message=f"{until} events on {topics}")
        await asyncio.sleep(0.3)
        events.extend(CloudEvent.from_json(r.value) for r in await consumer.poll(500, 300))
    finally:
        await consumer.stop()
    return events


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


async def file_and_approve(
    intake: Intake, payment: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An unemployment claim asking for `payment`, approved by BHXH: the method becomes the person's."""
    claim = builders.claim("UNEMPLOYMENT", payment=payment)
    filed = await intake.post("/v1/claims", "portal", json=claim)
    assert filed.status_code == 201, filed.text
    decided = await intake.post(
        f"/v1/claims/{filed.json()['claim_id']}/decision",
        "bhxh",
        json=builders.unemployment_approval(),
    )
    assert decided.status_code == 200, decided.text
    return claim, filed.json()


class TestTheContractsLimitsHoldAcrossServices:
    async def test_a_cash_reason_at_the_contracts_maximum_reaches_payouts_payment_method(
        self, services
    ):
        reason = text_of_length(max_length_of(CashReason))
        _, filed = await file_and_approve(
            services.intake, {"method": "CASH_POST_OFFICE", "cash_reason": reason}
        )

        async def kept_by_payout() -> dict[str, Any] | None:
            return await payout_method(services.payout, filed["beneficiary_id"])

        method = await wait_until(kept_by_payout, timeout=60, message="the cash method in payout")
        assert method["method"] == "CASH_POST_OFFICE"
        assert method["cash_reason"] == reason
        assert method["status"] == "VERIFIED"

    async def test_one_character_over_the_contract_is_refused_by_intake_and_nothing_is_stored(
        self, services
    ):
        intake = services.intake
        _, person = await file_and_approve(
            intake,
            {
                "method": "OWN_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": builders.account(),
            },
        )
        waiting = (
            await intake.post("/v1/claims", "portal", json=builders.claim("UNEMPLOYMENT"))
        ).json()
        methods_before = await intake.count(intake_methods)
        claims_before = await intake.count(intake_claims)
        entitlements_before = await intake.count(intake_entitlements)
        events_before = await intake.count(intake_outbox)

        too_long_reason = text_of_length(max_length_of(CashReason) + 1)
        refused = [
            await intake.put(
                f"/v1/beneficiaries/{person['beneficiary_id']}/payment-method",
                "bhxh",
                json={"method": "CASH_POST_OFFICE", "cash_reason": too_long_reason},
            ),
            await intake.post(
                "/v1/claims",
                "portal",
                json=builders.claim(
                    "UNEMPLOYMENT",
                    payment={"method": "CASH_POST_OFFICE", "cash_reason": too_long_reason},
                ),
            ),
            await intake.post(
                f"/v1/claims/{waiting['claim_id']}/decision",
                "bhxh",
                json=builders.unemployment_approval(
                    decision_number="QĐ-" + "9" * max_length_of(DecisionNumber)
                ),
            ),
        ]
        for response in refused:
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert too_long_reason not in response.text

        assert await intake.count(intake_methods) == methods_before
        assert await intake.count(intake_claims) == claims_before
        assert await intake.count(intake_entitlements) == entitlements_before
        assert await intake.count(intake_outbox) == events_before, (
            "a refused request announces nothing"
        )

    async def test_roll_rows_over_the_contract_are_rejected_with_their_column(self, services):
        rows = [
            builders.roll_row(
                "PENSION",
                payment_method="CASH_POST_OFFICE",
                bank_bin=None,
                account_number=None,
                cash_reason=text_of_length(max_length_of(CashReason) + 1),
            ),
            builders.roll_row("PENSION", amount_per_installment=str(MAX_VND + 1)),
        ]
        uploaded = await services.intake.post("/v1/roll/uploads", "bhxh", json={"rows": rows})
        assert uploaded.status_code in (200, 201, 422), uploaded.text
        body = uploaded.json()
        assert (body["accepted"], body["rejected"]) == (0, 2)
        assert [[e["pointer"] for e in r["errors"]] for r in body["rejections"]] == [
            ["/rows/0/cash_reason"],
            ["/rows/1/amount_per_installment"],
        ]
        assert await services.intake.count(intake_methods) == 0


class TestNoPersonalIdentifiersOnTheBus:
    async def test_intakes_events_carry_no_cccd_date_of_birth_or_si_number(self, services):
        intake = services.intake
        representative_cccd = builders.cccd(date(1980, 2, 3), female=True)
        represented, _ = await file_and_approve(
            intake,
            {
                "method": "AUTHORISED_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": builders.account(),
                "representative": {
                    "national_id": representative_cccd,
                    "full_name": builders.name(),
                    "relationship": "con",
                    "power_of_attorney_ref": "UQ-2023-001",
                    "valid_from": "2023-01-01",
                },
            },
        )
        own, filed = await file_and_approve(
            intake,
            {
                "method": "OWN_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": builders.account(),
            },
        )
        changed = await intake.put(
            f"/v1/beneficiaries/{filed['beneficiary_id']}/payment-method",
            "bhxh",
            json={"method": "CASH_POST_OFFICE", "cash_reason": "không tự giao dịch được"},
        )
        assert changed.status_code == 200, changed.text

        # Per claim: registered, received, decided, granted, method changed; and the change.
        events = await read_topic(services.payout, [BENEFICIARY_TOPIC, CLAIM_TOPIC], until=11)
        applicants = [represented["applicant"], own["applicant"]]
        identifiers = {
            "CCCD": {a["national_id"] for a in applicants} | {representative_cccd},
            "date of birth": {a["date_of_birth"] for a in applicants},
            "SI number": {a["si_number"] for a in applicants},
        }
        assert {
            "beneficiary-registered",
            "payment-method-changed",
            "claim-received",
            "entitlement-granted",
        } <= {e.type.split(".")[3] for e in events}
        for event in events:
            payload = event.to_json().decode()
            for kind, values in identifiers.items():
                assert not any(v in payload for v in values), f"{event.type} carries a {kind}"
            assert not keys_of(event.data) & {"national_id", "date_of_birth", "si_number"}, (
                event.type
            )
