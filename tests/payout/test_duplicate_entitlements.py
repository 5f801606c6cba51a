"""Two active entitlements of one scheme for one person (granted before intake refused them, or
anything else): payout schedules one installment a period, holds the other with its reason and
shows the anomaly, on PostgreSQL + Kafka and on the embedded default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from services.payout.adapters.orm import entitlements, installments, payment_methods
from shared.events.contracts import EntitlementGranted, Schedule
from tests.payout.harness import (
    COMMUNE,
    LIST_2023,
    VCB,
    PayoutStack,
    Person,
    accounts,
    intake_events,
    method_event,
    payout_settings,
    people,
    verified,
)
from tests.support.waiting import wait_until

PROBLEM = "application/problem+json"


@pytest.fixture(params=["postgresql", "sqlite"])
async def stack(
    request, pg_database, kafka_bootstrap, tmp_path, api_port, sandbox_server, sandbox
) -> AsyncIterator[PayoutStack]:
    if request.param == "postgresql":
        settings = payout_settings(
            await pg_database("payoutdup"), kafka_bootstrap, tmp_path, api_port, sandbox_server.url
        )
    else:
        settings = payout_settings(None, None, tmp_path, api_port, sandbox_server.url)
    running = PayoutStack(settings, sandbox_server.url)
    try:
        yield await running.start()
    finally:
        await running.close()


def second_grant(
    person: Person,
    entitlement_id: str,
    *,
    granted_at: datetime,
    amount: int | None = None,
    start_period: str = "2031-01",
) -> EntitlementGranted:
    """Another PENSION entitlement for the same person, by another decision."""
    return EntitlementGranted(
        entitlement_id=entitlement_id,
        beneficiary_id=person.beneficiary_id,
        scheme="PENSION",
        agency="BHXH",
        decision_number=f"QD-{entitlement_id}",
        amount_per_installment=amount or person.amount,
        schedule=Schedule(kind="OPEN_MONTHLY", start_period=start_period),
        commune_code=COMMUNE,
        commune_list_date=LIST_2023,
        granted_at=granted_at,
    )


async def installments_of(stack: PayoutStack, beneficiary_id: str, period: str) -> dict[str, dict]:
    async with stack.runtime.session_factory() as session:
        rows = (
            (
                await session.execute(
                    select(installments).where(
                        installments.c.beneficiary_id == beneficiary_id,
                        installments.c.period == period,
                    )
                )
            )
            .mappings()
            .all()
        )
    return {row["entitlement_id"]: dict(row) for row in rows}


async def settled(stack: PayoutStack, period: str, count: int) -> None:
    async def check() -> bool:
        return (await stack.states(period)).get("SETTLED", 0) == count

    await wait_until(check, timeout=60, message=f"{count} settled in {period}")


class TestTwoEntitlementsOfOneScheme:
    async def test_one_installment_a_period_the_other_held_and_shown_as_an_anomaly(
        self, stack, sandbox
    ):
        pensioner, other = people(2, bank_bin=VCB)
        await sandbox.seed_accounts(accounts([pensioner, other]))
        events = intake_events(pensioner, start_period="2031-01") + intake_events(
            other, start_period="2031-01"
        )
        roll_grant = events[1]
        claim_grant = second_grant(
            pensioner,
            f"{pensioner.entitlement_id}-CLAIM",
            granted_at=roll_grant.granted_at + timedelta(days=30),
            amount=pensioner.amount + 7,
        )
        await stack.feed([*events, claim_grant])
        # The consumer took both grants (nothing dead-lettered: payout's view holds them).
        async with stack.runtime.session_factory() as session:
            held = (
                await session.execute(
                    select(func.count())
                    .select_from(entitlements)
                    .where(entitlements.c.beneficiary_id == pensioner.beneficiary_id)
                )
            ).scalar_one()
        assert held == 2
        await verified(stack, [pensioner, other])

        started = await stack.start_cycle("2031-03")
        assert started["installments"]["count"] == 3
        mine = await installments_of(stack, pensioner.beneficiary_id, "2031-03")
        kept, duplicate = mine[pensioner.entitlement_id], mine[claim_grant.entitlement_id]
        assert kept["state"] == "SCHEDULED"  # the oldest entitlement pays
        assert (
            duplicate["state"] == "ON_HOLD" and duplicate["hold_reason"] == "DUPLICATE_ENTITLEMENT"
        )
        assert duplicate["attempt_no"] == 0 and duplicate["channel"] is None
        await settled(stack, "2031-03", 2)

        # Started again: nothing new, no second anomaly.
        again = await stack.start_cycle("2031-03")
        assert again["new_installments"] == 0
        # The next month: again one paid, one held.
        await stack.start_cycle("2031-04")
        await settled(stack, "2031-04", 2)
        april = await installments_of(stack, pensioner.beneficiary_id, "2031-04")
        assert april[claim_grant.entitlement_id]["hold_reason"] == "DUPLICATE_ENTITLEMENT"

        # A new usable method releases holds waiting for a method, never a duplicate.
        cash = method_event(pensioner, method_id=f"{pensioner.method_id}-CASH")
        cash = cash.model_copy(
            update={
                "method": "CASH_POST_OFFICE",
                "bank_bin": None,
                "account_number": None,
                "account_holder_name": None,
                "cash_reason": "cannot transact",
                "changed_at": datetime.now(UTC),
            }
        )
        await stack.feed([cash])
        async with stack.runtime.session_factory() as session:
            method_id = (
                await session.execute(
                    select(payment_methods.c.method_id).where(
                        payment_methods.c.beneficiary_id == pensioner.beneficiary_id
                    )
                )
            ).scalar_one()
        assert method_id == cash.method_id  # the change was applied, not dead-lettered
        for period in ("2031-03", "2031-04"):
            row = (await installments_of(stack, pensioner.beneficiary_id, period))[
                claim_grant.entitlement_id
            ]
            assert (row["state"], row["hold_reason"]) == ("ON_HOLD", "DUPLICATE_ENTITLEMENT")

        bank = await sandbox.ledger()
        assert bank["credits"] == 4 and bank["duplicates"] == 0
        assert bank["total_credited"] == 2 * (pensioner.amount + other.amount)

        async with stack.client("payout:read") as client:
            listed = await client.get("/v1/anomalies", params={"kind": "DUPLICATE_ENTITLEMENT"})
            assert listed.status_code == 200, listed.text
            items = listed.json()["items"]
            assert [(a["period"], a["installment_id"]) for a in items] == [
                ("2031-03", duplicate["id"]),
                ("2031-04", april[claim_grant.entitlement_id]["id"]),
            ]
            first = items[0]
            assert first["kind"] == "DUPLICATE_ENTITLEMENT"
            assert (
                first["beneficiary_id"] == pensioner.beneficiary_id and first["scheme"] == "PENSION"
            )
            assert first["entitlement_id"] == claim_grant.entitlement_id
            assert first["paid_by_entitlement_id"] == pensioner.entitlement_id
            assert first["installment_state"] == "ON_HOLD"
            # Filters and cursor pagination.
            page = (await client.get("/v1/anomalies", params={"limit": 1})).json()
            assert len(page["items"]) == 1 and page["next_cursor"]
            rest = (
                await client.get(
                    "/v1/anomalies", params={"limit": 1, "cursor": page["next_cursor"]}
                )
            ).json()
            assert [a["id"] for a in page["items"] + rest["items"]] == [a["id"] for a in items]
            last = (
                await client.get(
                    "/v1/anomalies", params={"limit": 1, "cursor": rest["next_cursor"]}
                )
            ).json()
            assert last["items"] == [] and last["next_cursor"] is None
            by_period = (await client.get("/v1/anomalies", params={"period": "2031-04"})).json()[
                "items"
            ]
            assert [a["period"] for a in by_period] == ["2031-04"]
            by_person = (
                await client.get("/v1/anomalies", params={"beneficiary_id": other.beneficiary_id})
            ).json()
            assert by_person["items"] == []
            by_installment = (
                await client.get("/v1/anomalies", params={"installment_id": duplicate["id"]})
            ).json()
            assert [a["id"] for a in by_installment["items"]] == [first["id"]]
            # Bad input: problem+json, never a 500.
            for params, status in (
                ({"cursor": "%%%"}, 400),
                ({"kind": "nope"}, 422),
                ({"period": "2031-13"}, 422),
                ({"limit": 0}, 422),
                ({"installment_id": 0}, 422),
            ):
                bad = await client.get("/v1/anomalies", params=params)
                assert bad.status_code == status and bad.headers["content-type"] == PROBLEM, (
                    params,
                    bad.text,
                )
            detail = (await client.get(f"/v1/installments/{duplicate['id']}")).json()
            assert [a["kind"] for a in detail["anomalies"]] == ["DUPLICATE_ENTITLEMENT"]
            metrics = (await client.get("/metrics")).text
        assert 'benefits_payout_anomalies{kind="DUPLICATE_ENTITLEMENT"} 2.0' in metrics
        async with stack.client("payout:operate") as operator:
            assert (await operator.get("/v1/anomalies")).status_code == 403
        async with stack.client() as client:
            anonymous = await client.get("/v1/anomalies", headers={"Authorization": ""})
            assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM

    async def test_a_grant_arriving_after_its_period_was_scheduled_is_held_even_if_older(
        self, stack, sandbox
    ):
        [pensioner] = people(1, bank_bin=VCB)
        await sandbox.seed_accounts(accounts([pensioner]))
        events = intake_events(pensioner, start_period="2031-01")
        await stack.feed(events)
        await verified(stack, [pensioner])
        await stack.start_cycle("2031-05")
        older = second_grant(
            pensioner,
            f"{pensioner.entitlement_id}-OLD",
            granted_at=events[1].granted_at - timedelta(days=365),
        )
        await stack.feed([older])
        again = await stack.start_cycle("2031-05")
        assert again["new_installments"] == 1
        may = await installments_of(stack, pensioner.beneficiary_id, "2031-05")
        assert (
            may[pensioner.entitlement_id]["hold_reason"] != "DUPLICATE_ENTITLEMENT"
        )  # the one made first pays
        assert may[older.entitlement_id]["hold_reason"] == "DUPLICATE_ENTITLEMENT"
        await settled(stack, "2031-05", 1)
        assert (await sandbox.ledger())["credits"] == 1

    async def test_the_database_refuses_a_second_payable_installment(self, stack):
        [pensioner] = people(1, bank_bin=VCB)
        await stack.feed(intake_events(pensioner, start_period="2031-01", method=False))
        await stack.start_cycle("2031-06")  # one installment, on hold for want of a method
        now = datetime.now(UTC)
        [cycle_id] = {
            row["cycle_id"]
            for row in (await installments_of(stack, pensioner.beneficiary_id, "2031-06")).values()
        }

        def row(entitlement_id: str, **overrides) -> dict:
            return {
                "cycle_id": cycle_id,
                "entitlement_id": entitlement_id,
                "beneficiary_id": pensioner.beneficiary_id,
                "period": "2031-06",
                "amount": 1_000_000,
                "scheme": "PENSION",
                "agency": "BHXH",
                "commune_code": COMMUNE,
                "commune_list_date": LIST_2023,
                "state": "SCHEDULED",
                "attempt_no": 1,
                "created_at": now,
                "updated_at": now,
                **overrides,
            }

        async with stack.runtime.session_factory() as session, session.begin():
            # Held as a duplicate, or cancelled: allowed next to the one that pays.
            await session.execute(
                insert(installments).values(
                    row("ENT-X", state="ON_HOLD", attempt_no=0, hold_reason="DUPLICATE_ENTITLEMENT")
                )
            )
            await session.execute(insert(installments).values(row("ENT-Y", state="CANCELLED")))
        with pytest.raises(IntegrityError):
            async with stack.runtime.session_factory() as session, session.begin():
                await session.execute(insert(installments).values(row("ENT-Z")))
