"""The payment calendar as data: January and February paid together before Tết (one entry, two
periods, still one installment per entitlement and period); the scheduler prepares an entry's
periods on or after its prepare_on, never releases money; the batches execute on the pay date,
never earlier than today. And the funds envelopes: loaded, listed, replaced."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select

from services.payout.adapters.orm import batches, installments, outbox
from tests.payout.harness import VCB, intake_events, people

TET = {"pay_date": "2032-02-06", "periods": ["2032-01", "2032-02"], "prepare_on": "2032-01-25"}


async def put_calendar(stack, *entries) -> None:
    async with stack.person("admin", "administrator") as admin:
        response = await admin.put("/v1/calendar", json={"entries": list(entries)})
    assert response.status_code == 200, response.text


async def counts(stack):
    async with stack.runtime.session_factory() as session:
        per_period = dict(
            (
                await session.execute(
                    select(installments.c.period, func.count()).group_by(installments.c.period)
                )
            ).all()
        )
        batch_rows = (
            await session.execute(
                select(batches.c.period, batches.c.state, batches.c.execution_date)
            )
        ).all()
    return per_period, batch_rows


class TestCalendar:
    async def test_january_and_february_prepared_together_paid_on_one_date(self, payout, sandbox):
        stack = await payout(run_workers=False, cycle_day=10)
        persons = people(3, bank_bin=VCB)
        for p in persons:
            p.method = "CASH_POST_OFFICE"  # usable without a verification
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-06")])
        await put_calendar(stack, TET)
        async with stack.client("payout:read") as reader:
            listed = (await reader.get("/v1/calendar")).json()["entries"]
        assert listed == [TET]

        # The calendar rules: not on cycle_day (10 January), but on its prepare_on.
        assert await stack.workers.schedule_once(datetime(2032, 1, 10, 3, tzinfo=UTC)) is None
        assert await stack.workers.schedule_once(datetime(2032, 1, 25, 3, tzinfo=UTC)) is not None
        per_period, batch_rows = await counts(stack)
        assert per_period == {"2032-01": 3, "2032-02": 3}  # one per entitlement and period
        # Prepared, never released by the scheduler; executed on the pay date.
        assert {(p, s, d) for p, s, d in batch_rows} == {
            ("2032-01", "PREPARED", date(2032, 2, 6)),
            ("2032-02", "PREPARED", date(2032, 2, 6)),
        }
        # Prepared once: the next run finds nothing to do.
        assert await stack.workers.schedule_once(datetime(2032, 1, 26, 3, tzinfo=UTC)) is None
        assert await stack.workers.submit_once() is False

    async def test_a_pay_date_already_past_executes_today(self, payout, sandbox):
        stack = await payout(run_workers=False)
        persons = people(1, bank_bin=VCB)
        persons[0].method = "CASH_POST_OFFICE"
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2020-01")])
        await put_calendar(
            stack, {"pay_date": "2021-03-05", "periods": ["2021-03"], "prepare_on": "2021-03-01"}
        )
        await stack.start_cycle("2021-03")
        _, batch_rows = await counts(stack)
        today = datetime.now(UTC).date()
        assert all(d >= today for _, _, d in batch_rows) and batch_rows

    async def test_bad_entries_are_refused(self, payout, sandbox):
        stack = await payout(run_workers=False)
        async with stack.person("admin", "administrator") as admin:
            for entries in (
                [{"pay_date": "2032-02-06", "periods": ["2032-01"], "prepare_on": "2032-02-07"}],
                [{"pay_date": "2032-02-06", "periods": ["2032-13"], "prepare_on": "2032-01-07"}],
                [
                    TET,
                    {"pay_date": "2032-03-06", "periods": ["2032-02"], "prepare_on": "2032-03-01"},
                ],
            ):
                response = await admin.put("/v1/calendar", json={"entries": entries})
                assert response.status_code == 422, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
        async with stack.person("checker", "checker", agency="BHXH") as checker:
            assert (await checker.put("/v1/calendar", json={"entries": [TET]})).status_code == 403


class TestEnvelopes:
    async def test_loaded_listed_replaced_each_announced(self, payout, sandbox):
        stack = await payout(run_workers=False)
        row = {
            "period": "2032-01",
            "agency": "DOLISA",
            "scheme": "MERITORIOUS",
            "amount": 5_000_000,
        }
        async with stack.person("admin", "administrator") as admin:
            assert (await admin.put("/v1/envelopes", json={"envelopes": [row]})).status_code == 200
            replaced = {**row, "amount": 7_000_000}
            assert (
                await admin.put("/v1/envelopes", json={"envelopes": [replaced]})
            ).status_code == 200
            twice = await admin.put("/v1/envelopes", json={"envelopes": [row, row]})
            assert twice.status_code == 422
            negative = await admin.put("/v1/envelopes", json={"envelopes": [{**row, "amount": -1}]})
            assert negative.status_code == 422
        async with stack.client("payout:read") as reader:
            items = (await reader.get("/v1/envelopes", params={"period": "2032-01"})).json()[
                "items"
            ]
        assert [(i["scheme"], i["amount"], i["set_by"]) for i in items] == [
            ("MERITORIOUS", 7_000_000, "admin")
        ]
        async with stack.runtime.session_factory() as session:
            announced = (
                await session.execute(
                    select(func.count()).where(outbox.c.event_type.like("%envelope-set%"))
                )
            ).scalar()
        assert announced == 2
        async with stack.person("maker", "maker", agency="DOLISA") as maker:
            assert (await maker.put("/v1/envelopes", json={"envelopes": [row]})).status_code == 403


class TestEnvelopeData:
    async def test_the_demo_file_loads_through_the_api(self, payout, sandbox):
        from services.payout.adapters.envelope_data import envelope_rows

        rows = envelope_rows(["2032-01", "2032-02"])
        assert len(rows) == 14 and all(r["amount"] > 0 for r in rows)
        stack = await payout(run_workers=False)
        async with stack.person("admin", "administrator") as admin:
            assert (await admin.put("/v1/envelopes", json={"envelopes": rows})).status_code == 200
        async with stack.client("payout:read") as reader:
            items = (await reader.get("/v1/envelopes")).json()["items"]
        assert len(items) == 14
