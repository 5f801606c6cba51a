"""The payout API's edges: scopes, masking of personal data, problem+json for bad input,
cursor pagination and the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.payout.harness import VCB, accounts, intake_events, people

PERIOD = "2031-10"


class TestApi:
    async def test_scopes_masking_bad_input_and_pagination(self, payout, sandbox):
        stack = await payout(run_workers=False)
        persons = people(5, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await stack.workers.verify_once()
        async with stack.client("payout:read") as reader:
            assert (await reader.post("/v1/cycles", json={"period": PERIOD})).status_code == 403
        async with stack.client() as client:
            anonymous = await client.get("/v1/installments", headers={"Authorization": ""})
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"].startswith("application/problem+json")
            bad = await client.post("/v1/cycles", json={"period": "2031-13"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/period"
            assert (await client.get("/v1/cycles/2031-1")).status_code == 400
            assert (await client.get("/v1/cycles/2030-01")).status_code == 404
            assert (
                await client.get("/v1/installments", params={"cursor": "%%%"})
            ).status_code == 400
            assert (
                await client.get("/v1/installments", params={"state": "PAID"})
            ).status_code == 422
            assert (await client.get("/v1/installments/999999")).status_code == 404
            assert (
                await client.post(
                    "/v1/reconciliations", json={"counterparty": "BANK", "date": "2031-10-01"}
                )
            ).status_code == 422
            assert (await client.get("/v1/ledger")).status_code == 422
            assert (await client.post("/v1/cycles", json={"period": PERIOD})).status_code == 201
            first = (
                await client.get("/v1/installments", params={"period": PERIOD, "limit": 3})
            ).json()
            second = (
                await client.get(
                    "/v1/installments",
                    params={"period": PERIOD, "limit": 3, "cursor": first["next_cursor"]},
                )
            ).json()
            assert (
                len(first["items"]) == 3
                and len(second["items"]) == 2
                and second["next_cursor"] is None
            )
            ids = [i["id"] for i in first["items"] + second["items"]]
            assert ids == sorted(set(ids))
            masked = first["items"][0]["account_number"]
            method = (
                await client.get(f"/v1/beneficiaries/{persons[0].beneficiary_id}/payment-method")
            ).json()
            batches = (await client.get("/v1/batches", params={"period": PERIOD})).json()["items"]
            batch = (await client.get(f"/v1/batches/{batches[0]['batch_id']}")).json()
        assert (
            masked.startswith("*") and masked[-4:] == persons[0].account_number[-4:]
        ) or masked.endswith(tuple(p.account_number[-4:] for p in persons))
        assert "*" in method["account_number"] and "*" in method["verified_name"]
        assert batch["control_count"] == 5 and batch["control_sum"] == sum(
            p.amount for p in persons
        )
        async with stack.client("payout:read", "pii:read") as privileged:
            clear = (await privileged.get("/v1/installments", params={"period": PERIOD})).json()[
                "items"
            ]
        assert {i["account_number"] for i in clear} == {p.account_number for p in persons}


class TestScheduler:
    async def test_scheduler_opens_the_month_on_its_day_once(self, payout, sandbox):
        stack = await payout(run_workers=False, cycle_day=10)
        persons = people(2, bank_bin=VCB)
        for p in persons:
            p.method = "CASH_POST_OFFICE"
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        assert await stack.workers.schedule_once(datetime(2031, 11, 9, 12, 0, tzinfo=UTC)) is None
        started = await stack.workers.schedule_once(
            datetime(2031, 11, 9, 17, 30, tzinfo=UTC)
        )  # 10 Nov in Hanoi
        assert started is not None and started.period == "2031-11" and started.scheduled == 2
        assert await stack.workers.schedule_once(datetime(2031, 11, 12, 0, 0, tzinfo=UTC)) is None


class TestSettings:
    def test_production_refuses_placeholder_webhook_secrets(self):
        import pytest
        from pydantic import ValidationError

        from services.payout.settings import PayoutSettings

        good = {"environment": "production"}
        with pytest.raises(ValidationError):
            PayoutSettings(**good)
        with pytest.raises(ValidationError):
            PayoutSettings(**good, webhook_secrets={"970436": "dev-secret-970436"})
        settings = PayoutSettings(
            **good, webhook_secrets={"970436": "k3y-from-the-bank-0123456789abcdef"}
        )
        assert settings.bank_channels().webhook_secrets == {
            "970436": "k3y-from-the-bank-0123456789abcdef"
        }
        assert (
            PayoutSettings().permanent_failure_fallback == "none"
            and PayoutSettings().batch_size == 2000
        )
