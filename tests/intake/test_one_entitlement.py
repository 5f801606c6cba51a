"""One entitlement per person and scheme for any period: roll uploads, decisions and the
database refuse a second one (PostgreSQL, and SQLite for the index)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from services.intake.adapters.orm import claims, entitlements, outbox
from services.intake.bootstrap import MIGRATIONS
from services.intake.domain.entitlements import HeldEntitlement, overlapping_entitlement
from services.intake.domain.schedules import Schedule
from shared.migrations import upgrade_to_head_async
from tests.intake import builders

PROBLEM = "application/problem+json"


def pension_approval(start_period: str = "2026-01", **overrides) -> dict:
    body = {
        "outcome": "APPROVED",
        "agency": "BHXH",
        "decision_number": f"QD-LH-{uuid.uuid4().hex[:8]}",
        "amount_per_installment": 5_200_000,
        "schedule": {"kind": "OPEN_MONTHLY", "start_period": start_period},
    }
    body.update(overrides)
    return body


def claim_of(row: dict, scheme: str = "PENSION") -> dict:
    """A portal claim by the person of a roll row."""
    return builders.claim(
        scheme,
        applicant={
            "national_id": row["national_id"],
            "full_name": row["full_name"],
            "date_of_birth": row["date_of_birth"],
            "si_number": row.get("si_number") or builders.si_number(),
        },
    )


async def on_roll(intake, row: dict) -> dict:
    report = (await intake.post("/v1/roll/uploads", "bhxh", json={"rows": [row]})).json()
    assert report["accepted"] == 1, report
    return report


async def filed(intake, body: dict) -> dict:
    response = await intake.post("/v1/claims", "portal", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class TestTheRule:
    def test_overlapping_schedules_of_one_scheme_conflict_and_ended_ones_do_not(self):
        held = [
            HeldEntitlement(
                "e1", "UNEMPLOYMENT", "QD-1", "ACTIVE", Schedule("FIXED_MONTHLY", "2023-05", 4)
            ),
            HeldEntitlement(
                "e2", "PENSION", "QD-2", "STOPPED", Schedule("OPEN_MONTHLY", "2020-01"), "2026-01"
            ),
        ]
        assert (
            overlapping_entitlement(
                held, "UNEMPLOYMENT", Schedule("FIXED_MONTHLY", "2023-08", 3)
            ).id
            == "e1"
        )
        assert (
            overlapping_entitlement(held, "UNEMPLOYMENT", Schedule("FIXED_MONTHLY", "2023-09", 3))
            is None
        )
        assert (
            overlapping_entitlement(held, "VOCATIONAL_TRAINING", Schedule("ONE_OFF", "2023-06"))
            is None
        )
        # A stopped pension pays until its stop: a new one may start there, not before.
        assert overlapping_entitlement(held, "PENSION", Schedule("OPEN_MONTHLY", "2026-01")) is None
        assert (
            overlapping_entitlement(held, "PENSION", Schedule("OPEN_MONTHLY", "2025-12")).id == "e2"
        )


class TestDecisionOfAPersonOnTheRoll:
    async def test_pension_claim_of_a_pensioner_on_the_roll_is_refused_and_stays_undecided(
        self, intake
    ):
        row = builders.roll_row("PENSION")
        report = await on_roll(intake, row)
        roll_entitlement = report["rows"][0]["entitlement_id"]
        claim = await filed(intake, claim_of(row))
        events_before = await intake.count(outbox)

        response = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=pension_approval()
        )
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"].endswith("/duplicate-entitlement")
        assert "already has an active PENSION entitlement" in problem["detail"]
        assert row["decision_number"] in problem["detail"]
        assert row["national_id"] not in response.text and row["full_name"] not in response.text
        assert problem["entitlement_id"] == roll_entitlement
        # Nothing changed: one entitlement, the claim undecided, no event.
        assert await intake.count(entitlements) == 1
        status = (await intake.get(f"/v1/claims/{claim['claim_id']}", "portal")).json()
        assert status["status"] == "RECEIVED"
        assert await intake.count(outbox) == events_before

    async def test_once_the_roll_pension_is_stopped_the_claim_is_approved_from_the_stop(
        self, intake
    ):
        row = builders.roll_row("PENSION")
        await on_roll(intake, row)
        [held] = await intake.rows(select(entitlements.c.id))
        stop = await intake.post(
            f"/v1/entitlements/{held.id}/stop",
            "bhxh",
            json={"reason": "OTHER", "effective_period": "2026-03"},
        )
        assert stop.status_code == 200, stop.text
        claim = await filed(intake, claim_of(row))
        early = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=pension_approval("2026-02")
        )
        assert early.status_code == 409 and "2026-03" in early.json()["detail"]
        approved = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=pension_approval("2026-03")
        )
        assert approved.status_code == 200, approved.text
        assert await intake.count(entitlements) == 2

    async def test_a_later_unemployment_period_is_approved_an_overlapping_one_refused(self, intake):
        first = builders.claim()
        a = await filed(intake, first)
        decided = await intake.post(
            f"/v1/claims/{a['claim_id']}/decision", "bhxh", json=builders.unemployment_approval()
        )  # 2023-05 .. 2023-08
        assert decided.status_code == 200, decided.text
        b = await filed(intake, builders.claim(applicant=first["applicant"]))
        overlapping = await intake.post(
            f"/v1/claims/{b['claim_id']}/decision",
            "bhxh",
            json=builders.unemployment_approval(
                schedule={"kind": "FIXED_MONTHLY", "start_period": "2023-08", "installments": 4}
            ),
        )
        assert overlapping.status_code == 409, overlapping.text
        later = await intake.post(
            f"/v1/claims/{b['claim_id']}/decision",
            "bhxh",
            json=builders.unemployment_approval(
                schedule={"kind": "FIXED_MONTHLY", "start_period": "2024-02", "installments": 4}
            ),
        )
        assert later.status_code == 200, later.text

    async def test_roll_row_for_a_pensioner_with_a_decided_pension_is_refused(self, intake):
        body = builders.claim("PENSION")
        claim = await filed(intake, body)
        decided = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=pension_approval("2024-01")
        )
        assert decided.status_code == 200, decided.text
        applicant = body["applicant"]
        row = builders.roll_row(
            "PENSION",
            national_id=applicant["national_id"],
            full_name=applicant["full_name"],
            date_of_birth=applicant["date_of_birth"],
            si_number=applicant["si_number"],
        )
        report = (await intake.post("/v1/roll/uploads", "bhxh", json={"rows": [row]})).json()
        assert report["accepted"] == 0 and report["rejected"] == 1, report
        [error] = report["rejections"][0]["errors"]
        assert error["pointer"] == "/rows/0/scheme"
        assert "already has an active PENSION entitlement" in error["detail"]
        assert await intake.count(entitlements) == 1


class TestConcurrentApprovals:
    async def test_two_approvals_at_once_grant_one_entitlement_the_other_is_409(self, intake):
        body = builders.claim("PENSION")
        a = await filed(intake, body)
        b = await filed(intake, claim_of({**body["applicant"]}))
        answers = await asyncio.gather(
            intake.post(f"/v1/claims/{a['claim_id']}/decision", "bhxh", json=pension_approval()),
            intake.post(f"/v1/claims/{b['claim_id']}/decision", "bhxh", json=pension_approval()),
        )
        assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
        loser = next(r for r in answers if r.status_code == 409)
        assert loser.headers["content-type"] == PROBLEM
        assert loser.json()["type"].endswith("/duplicate-entitlement")
        assert await intake.count(entitlements) == 1
        statuses = sorted(r.status for r in await intake.rows(select(claims.c.status)))
        assert statuses == ["APPROVED", "RECEIVED"]

    async def test_an_approval_racing_an_uncommitted_grant_gets_409_from_the_index(self, intake):
        """The rule's read cannot see a grant not yet committed: the database index refuses the
        second one, and the answer is still a 409 that says why."""
        row = builders.roll_row("PENSION")
        claim = await filed(intake, claim_of(row))
        [person] = await intake.rows(select(claims.c.beneficiary_id))
        engine = intake.app.state.runtime.engine
        async with engine.connect() as rival:
            transaction = await rival.begin()
            await rival.execute(
                insert(entitlements).values(
                    id=str(uuid.uuid4()),
                    beneficiary_id=person.beneficiary_id,
                    scheme="PENSION",
                    agency="BHXH",
                    decision_number="QD-RIVAL",
                    amount_per_installment=5_000_000,
                    schedule_kind="OPEN_MONTHLY",
                    start_period="2020-01",
                    status="ACTIVE",
                    commune_code=builders.COMMUNE_2023,
                    commune_list_date=date(2023, 5, 7),
                    source="ROLL",
                    client_id="bhxh",
                    granted_at=datetime.now(UTC),
                )
            )
            decision = asyncio.ensure_future(
                intake.post(
                    f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=pension_approval()
                )
            )

            async def waiting_on_a_lock() -> bool:
                async with engine.connect() as conn:
                    return bool(
                        (
                            await conn.execute(
                                text(
                                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND wait_event_type = 'Lock'"
                                )
                            )
                        ).scalar_one()
                    )

            for _ in range(200):
                if await waiting_on_a_lock() or decision.done():
                    break
                await asyncio.sleep(0.05)
            assert not decision.done(), (await decision).text
            await transaction.commit()
        response = await decision
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/duplicate-entitlement")
        assert "concurrent" in response.json()["detail"]
        assert await intake.count(entitlements) == 1
        status = (await intake.get(f"/v1/claims/{claim['claim_id']}", "portal")).json()
        assert status["status"] == "RECEIVED"


class TestDatabaseIndex:
    @pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
    async def test_second_open_entitlement_of_a_scheme_is_refused_by_the_database(
        self, backend, pg_database, tmp_path
    ):
        url = (
            await pg_database("intakeone")
            if backend == "postgresql"
            else f"sqlite+aiosqlite:///{tmp_path}/i.db"
        )
        await upgrade_to_head_async(MIGRATIONS, url)
        engine = create_async_engine(url)
        person = str(uuid.uuid4())
        now = datetime.now(UTC)

        def entitlement(number: str, **overrides) -> dict:
            return {
                "id": str(uuid.uuid4()),
                "beneficiary_id": person,
                "scheme": "PENSION",
                "agency": "BHXH",
                "decision_number": number,
                "amount_per_installment": 5_000_000,
                "schedule_kind": "OPEN_MONTHLY",
                "start_period": "2020-01",
                "status": "ACTIVE",
                "commune_code": "08707",
                "commune_list_date": date(2023, 5, 7),
                "source": "ROLL",
                "client_id": "bhxh",
                "granted_at": now,
                **overrides,
            }

        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO beneficiaries (id, national_id, full_name, date_of_birth, commune_code, "
                        "commune_list_date, registered_via, registered_at) VALUES "
                        "(:id, '026055000001', 'Nguyễn Văn An', '1955-01-15', '08707', '2023-05-07', 'ROLL', :now)"
                    ),
                    {"id": person, "now": now},
                )
                await conn.execute(insert(entitlements).values(entitlement("QD-1")))
                # Stopped and finite ones are the rule's to judge; the index holds the open-ended.
                await conn.execute(
                    insert(entitlements).values(entitlement("QD-2", status="STOPPED"))
                )
                await conn.execute(
                    insert(entitlements).values(
                        entitlement("QD-3", schedule_kind="FIXED_MONTHLY", installments=3)
                    )
                )
                await conn.execute(
                    insert(entitlements).values(entitlement("QD-4", scheme="SI_ALLOWANCE"))
                )
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(insert(entitlements).values(entitlement("QD-5")))
        finally:
            await engine.dispose()
