"""Concurrent filings share transactions on PostgreSQL, yet each keeps its own outcome."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter

from sqlalchemy import event, select, text

from services.intake.adapters.orm import (
    audit_log,
    beneficiaries,
    claims,
    idempotency_records,
    outbox,
)
from services.intake.settings import IntakeSettings
from tests.intake import builders
from tests.intake.conftest import running_intake


class TestGroupCommit:
    async def test_concurrent_filings_each_get_their_own_answer(self, intake):
        unique = [builders.claim() for _ in range(40)]
        replayed = unique[:5]  # the same body twice, at the same time
        modified = []
        for body in unique[5:8]:  # same dossier, another account: one of the pair is a 409
            other = copy.deepcopy(body)
            other["payment"]["account_number"] = builders.account()
            modified.append(other)
        person = builders.claim()
        same_person = [person] + [
            builders.claim("VOCATIONAL_TRAINING", applicant=person["applicant"]) for _ in range(3)
        ]
        impostor = builders.claim(applicant={**person["applicant"], "full_name": "Đỗ Thị Khác"})
        bodies = unique + [copy.deepcopy(b) for b in replayed] + modified + same_person + [impostor]

        responses = await asyncio.gather(
            *(
                intake.post(
                    "/v1/claims", "portal", json=b, headers={"x-correlation-id": f"corr-{i}"}
                )
                for i, b in enumerate(bodies)
            )
        )

        by_dossier: dict[str, list] = {}
        for body, response in zip(bodies, responses, strict=True):
            by_dossier.setdefault(body["portal_dossier_id"], []).append(response)
        for body in replayed:
            first, second = by_dossier[body["portal_dossier_id"]]
            assert {first.status_code, second.status_code} == {201}
            assert first.content == second.content
            assert sorted(r.headers.get("Idempotent-Replayed", "") for r in (first, second)) == [
                "",
                "true",
            ]
        for body in modified:
            pair = by_dossier[body["portal_dossier_id"]]
            assert sorted(r.status_code for r in pair) == [201, 409]
        person_answers = [by_dossier[b["portal_dossier_id"]][0] for b in [*same_person, impostor]]
        statuses = Counter(r.status_code for r in person_answers)
        # The impostor loses if the person was registered first, else the person's filings lose.
        assert statuses in (Counter({201: 4, 422: 1}), Counter({201: 1, 422: 4}))

        dossiers = {b["portal_dossier_id"] for b in bodies}
        written = [
            r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
        ]
        assert await intake.count(claims) == len(written) == await intake.count(idempotency_records)
        assert len({r.json()["claim_id"] for r in written}) == len(written)
        rows = await intake.rows(select(claims.c.portal_dossier_id))
        assert (
            len(rows) == len({r.portal_dossier_id for r in rows})
            and {r.portal_dossier_id for r in rows} <= dossiers
        )
        people = await intake.count(beneficiaries)
        assert people == len({r.json()["beneficiary_id"] for r in written})
        assert (
            await intake.count(outbox) == len(written) + people
        )  # claim received + beneficiary registered
        assert (
            await intake.count(audit_log, audit_log.c.entity_type.not_in(["client", "user"]))
            == len(written) + people
        )
        # Each filing's event and audit entry carry its own request's correlation id.
        sent: dict[str, set[str]] = {}
        for i, b in enumerate(bodies):
            sent.setdefault(b["portal_dossier_id"], set()).add(f"corr-{i}")
        for response in written:
            answer = response.json()
            [event] = await intake.rows(
                select(outbox.c.correlation_id).where(outbox.c.key == answer["claim_id"])
            )
            [entry] = await intake.rows(
                select(audit_log.c.correlation_id).where(
                    audit_log.c.entity_id == answer["claim_id"]
                )
            )
            assert (
                event.correlation_id == entry.correlation_id == response.headers["x-correlation-id"]
            )
            assert response.headers["x-correlation-id"] in sent[answer["portal_dossier_id"]]
        batcher = intake.app.state.filing_batcher
        assert batcher.filings == len(written)
        assert batcher.batches < len(written), "concurrent filings shared transactions"


class TestWriterConnection:
    async def test_filings_one_after_another_take_one_connection_from_the_pool(self, intake):
        checkouts = []

        def checked_out(*_: object) -> None:
            checkouts.append(1)

        pool = intake.app.state.runtime.engine.sync_engine.pool
        event.listen(pool, "checkout", checked_out)
        try:
            for _ in range(5):  # each a batch of its own
                response = await intake.post("/v1/claims", "portal", json=builders.claim())
                assert response.status_code == 201
        finally:
            event.remove(pool, "checkout", checked_out)
        assert intake.app.state.filing_batcher.batches == 5
        assert len(checkouts) <= 1, "the writer keeps its connection between batches"

    async def test_a_lost_connection_is_replaced_and_no_filing_is_lost(self, intake):
        first = await intake.post("/v1/claims", "portal", json=builders.claim())
        assert first.status_code == 201
        async with intake.app.state.runtime.engine.connect() as admin:
            ended = (
                await admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND usename = current_user"
                    )
                )
            ).all()
        assert ended, "the writer's connection was ended"

        bodies = [builders.claim() for _ in range(3)]
        for body in bodies:
            response = await intake.post("/v1/claims", "portal", json=body)
            assert response.status_code == 201, response.text
        written = await intake.rows(select(claims.c.portal_dossier_id))
        assert {b["portal_dossier_id"] for b in bodies} <= {r.portal_dossier_id for r in written}


class TestWaitingForCompany:
    async def test_filings_arriving_apart_while_the_writer_is_idle_share_a_transaction(
        self, pg_database, kafka_bootstrap, tmp_path
    ):
        settings = IntakeSettings(
            database_url=await pg_database("intake"),
            kafka_bootstrap_servers=kafka_bootstrap,
            data_dir=tmp_path,
            filing_batch_wait_ms=2_000,
        )
        async for intake in running_intake(settings):

            async def file_after(delay: float, intake=intake):
                await asyncio.sleep(delay)
                return await intake.post("/v1/claims", "portal", json=builders.claim())

            # Far enough apart that each would be written alone, close enough to share a wait.
            responses = await asyncio.gather(*(file_after(0.1 * i) for i in range(5)))

            assert [r.status_code for r in responses] == [201] * 5
            assert intake.app.state.filing_batcher.batches == 1
            assert await intake.count(claims) == 5
