"""The one write of claim filings (a batch, or a list of one), on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.intake.adapters.orm import (
    audit_log,
    beneficiaries,
    claims,
    idempotency_records,
    outbox,
)
from services.intake.api.schemas import ClaimIn
from services.intake.domain.errors import Invalid
from services.intake.service_layer import claims as filing
from services.intake.service_layer.common import IntakeUnitOfWork, Replay, request_hash
from shared.clock import utcnow
from shared.observability import correlation_id
from shared.uow import unit_of_work
from tests.intake import builders
from tests.intake.conftest import Intake


def prepared(body: dict[str, Any], correlation: str) -> filing.Filing:
    """A filing as the API prepares it, under its request's correlation id."""
    parsed = ClaimIn.model_validate(body)
    applicant = parsed.applicant
    command = filing.FileClaim(
        portal_dossier_id=parsed.portal_dossier_id,
        scheme=parsed.scheme,
        national_id=applicant.national_id,
        full_name=applicant.full_name,
        date_of_birth=applicant.date_of_birth,
        si_number=applicant.si_number,
        commune_code=parsed.address.commune_code,
        commune_list_date=parsed.address.list_date,
        payment=parsed.payment.spec(),
        request_hash=request_hash(parsed.model_dump(mode="json")),
    )
    token = correlation_id.set(correlation)
    try:
        return filing.prepare_filing(command, "portal", utcnow())
    finally:
        correlation_id.reset(token)


async def write(intake: Intake, filings: list[filing.Filing]) -> list[filing.FilingOutcome]:
    runtime = intake.app.state.runtime
    async with unit_of_work(runtime.engine, runtime.outbox, "test", kind=IntakeUnitOfWork) as uow:
        return await filing.write_filings(uow, filings)


class TestWriteFilings:
    async def test_a_batch_writes_each_new_filing_and_refuses_the_others_alone(
        self, intake_on_both
    ):
        intake = intake_on_both
        first_body = builders.claim()
        [first] = await write(intake, [prepared(first_body, "corr-first")])
        assert isinstance(first, bytes)

        fresh = [builders.claim(), builders.claim()]
        used_dossier = builders.claim(
            portal_dossier_id=first_body["portal_dossier_id"]
        )  # a new person
        impostor = builders.claim(
            "VOCATIONAL_TRAINING", applicant={**first_body["applicant"], "full_name": "Đỗ Thị Khác"}
        )
        bodies = [*fresh, used_dossier, impostor]
        outcomes = await write(intake, [prepared(b, f"corr-{i}") for i, b in enumerate(bodies)])

        assert [type(o) for o in outcomes[:2]] == [bytes, bytes]
        assert outcomes[2] == filing.ALREADY_FILED
        assert isinstance(outcomes[3], Invalid)
        assert await intake.count(claims) == 3 == await intake.count(idempotency_records)
        # The person registered for the refused dossier is not kept; the impostor added no one.
        assert await intake.count(beneficiaries) == 3
        assert (
            await intake.count(outbox) == 6
        )  # each written filing: beneficiary registered, claim received
        assert (
            await intake.count(audit_log, audit_log.c.entity_type.not_in(["client", "user"])) == 6
        )
        for i in (0, 1):
            claim_id = filing_answer_claim(outcomes[i])
            [event] = await intake.rows(
                select(outbox.c.correlation_id).where(outbox.c.key == claim_id)
            )
            [entry] = await intake.rows(
                select(audit_log.c.correlation_id).where(audit_log.c.entity_id == claim_id)
            )
            assert event.correlation_id == entry.correlation_id == f"corr-{i}"

    async def test_one_filing_again_replays_its_answer(self, intake_on_both):
        intake = intake_on_both
        body = builders.claim()
        runtime = intake.app.state.runtime
        async with unit_of_work(
            runtime.engine, runtime.outbox, "portal", kind=IntakeUnitOfWork
        ) as uow:
            answer = await filing.write_prepared_filing(uow, prepared(body, "corr-1"))
        with pytest.raises(Replay) as replay:
            async with unit_of_work(
                runtime.engine, runtime.outbox, "portal", kind=IntakeUnitOfWork
            ) as uow:
                await filing.write_prepared_filing(uow, prepared(body, "corr-2"))
        assert replay.value.status_code == 201 and replay.value.body == answer
        assert await intake.count(claims) == 1 and await intake.count(outbox) == 2


def filing_answer_claim(answer: Any) -> str:
    claim_id: str = orjson.loads(answer)["claim_id"]
    return claim_id
