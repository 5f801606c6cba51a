"""The projections on the real stack: PostgreSQL read models fed through the Kafka broker."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import func, select

from services.reporting.adapters.orm import payment_cube, payment_facts, payment_people
from services.reporting.consumers.rebuild import rebuild
from tests.reporting.support import events as ev
from tests.reporting.support.events import record
from tests.reporting.support.scenarios import mixed_history
from tests.support.waiting import wait_until

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def project(reporting, payloads) -> None:
    reporting.start_worker()
    await reporting.publish(payloads)
    await reporting.wait_caught_up()


class TestFiguresFromTheStream:
    async def test_the_figures_are_what_the_history_adds_up_to(self, reporting_kafka):
        payloads, expected = mixed_history()
        await project(reporting_kafka, payloads)
        kpis = await reporting_kafka.kpis()
        assert kpis["people_paid"] == sum(expected.people.values())
        assert kpis["paid_amount"] == sum(expected.paid_amount.values())
        assert kpis["paid_count"] == sum(expected.paid_count.values())
        assert kpis["returned_amount"] == expected.returned_amount
        assert kpis["pending_count"] == 0
        assert (
            kpis["claims_received"],
            kpis["decisions_approved"],
            kpis["decisions_rejected"],
        ) == (expected.claims_received, expected.approved, expected.rejected)
        may_urban = await reporting_kafka.kpis(period="2023-05", area_type="URBAN")
        assert may_urban["people_paid"] == expected.people_where(
            period="2023-05", area_type="URBAN"
        )
        cashless = sum(
            expected.people_where(period="2023-05", area_type="URBAN", channel=c)
            for c in ("OWN_ACCOUNT", "AUTHORISED_ACCOUNT")
        )
        assert may_urban["people_cashless"] == cashless
        lap_thach = await reporting_kafka.kpis(area_level="district", area_code="246")
        assert lap_thach["paid_amount"] == expected.amount_where(district="246")


class TestIdempotence:
    async def test_the_same_events_twice_change_nothing(self, reporting_kafka):
        payloads, _ = mixed_history(beneficiaries=24)
        records = [record(p) for p in payloads]
        await project(reporting_kafka, records)
        models, figures = await reporting_kafka.read_models(), await reporting_kafka.api_figures()
        applied = (await reporting_kafka.get("/v1/freshness"))["events_applied"]

        await reporting_kafka.publish(records)  # redelivered: same event ids
        await reporting_kafka.publish(payloads)  # re-published: same facts, new event ids
        await reporting_kafka.wait_caught_up()
        assert (await reporting_kafka.get("/v1/freshness"))["events_applied"] == applied + len(
            payloads
        )
        assert await reporting_kafka.read_models() == models
        assert await reporting_kafka.api_figures() == figures


class TestRebuild:
    async def test_a_rebuild_gives_identical_figures_and_the_worker_switches_to_it(
        self, reporting_kafka
    ):
        payloads, _ = mixed_history(beneficiaries=30)
        await project(reporting_kafka, payloads)
        models, figures = await reporting_kafka.read_models(), await reporting_kafka.api_figures()
        assert figures["kpis"]["people_paid"] > 0

        result = await rebuild(
            reporting_kafka.runtime, timeout=120
        )  # the live worker keeps running

        assert result.generation == 2
        assert await reporting_kafka.read_models() == models
        assert await reporting_kafka.api_figures() == figures
        freshness = await reporting_kafka.get("/v1/freshness")
        assert (freshness["generation"], freshness["state"]) == (2, "ACTIVE")

        # The live worker moved to generation 2 and goes on from where the replay stopped.
        late = ev.facts("late-1", "late-person", "2023-06", 1_234_567, commune=ev.URBAN_COMMUNE)
        await reporting_kafka.publish([ev.settled(late)])

        async def counted() -> bool:
            return (await reporting_kafka.kpis())["paid_amount"] == figures["kpis"][
                "paid_amount"
            ] + 1_234_567

        await wait_until(counted, 30, message="the late payment on the rebuilt generation")


class TestLedgerReadiness:
    async def test_cube_totals_equal_the_installment_facts_to_the_dong(self, reporting_kafka):
        payloads, _ = mixed_history(beneficiaries=36, seed=11)
        await project(reporting_kafka, payloads)
        async with reporting_kafka.runtime.session_factory() as session:
            facts = dict(
                (
                    await session.execute(
                        select(payment_facts.c.period, func.sum(payment_facts.c.amount))
                        .where(payment_facts.c.state.in_(["SETTLED", "PAID_CASH"]))
                        .group_by(payment_facts.c.period)
                    )
                ).all()
            )
            cube = dict(
                (
                    await session.execute(
                        select(
                            payment_cube.c.period, func.sum(payment_cube.c.paid_amount)
                        ).group_by(payment_cube.c.period)
                    )
                ).all()
            )
            people = (
                await session.execute(
                    select(func.count())
                    .select_from(payment_people)
                    .where(payment_people.c.channel.is_not(None))
                )
            ).scalar_one()
        assert {p: int(v) for p, v in cube.items() if v} == {p: int(v) for p, v in facts.items()}
        assert (await reporting_kafka.kpis())["people_paid"] == people
        by_period = (await reporting_kafka.get("/v1/breakdowns/period"))["rows"]
        assert {r["code"]: r["paid_amount"] for r in by_period if r["paid_amount"]} == {
            p: int(v) for p, v in facts.items()
        }


class TestFreshness:
    async def test_a_settled_payment_shows_in_the_figures_within_seconds(self, reporting_kafka):
        reporting_kafka.start_worker()
        await reporting_kafka.publish(
            [ev.settled(ev.facts("warm-1", "warm", "2023-07", 1_000_000))]
        )
        await reporting_kafka.wait_caught_up()
        lags = []
        for n in range(10):
            f = ev.facts(f"fresh-{n}", f"fresh-{n}", "2023-08", 2_000_000 + n)
            before = (await reporting_kafka.kpis(period="2023-08"))["paid_amount"]
            started = time.perf_counter()
            await reporting_kafka.publish([ev.settled(f)])

            async def visible(expected: int = before + 2_000_000 + n) -> bool:
                return (await reporting_kafka.kpis(period="2023-08"))["paid_amount"] == expected

            await wait_until(
                visible, 10, interval=0.01, message="the settled payment in the figures"
            )
            lags.append(time.perf_counter() - started)
        lags.sort()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "reporting-freshness.json").write_text(
            json.dumps(
                {
                    "backend": "postgresql+kafka",
                    "samples": len(lags),
                    "median_s": round(lags[len(lags) // 2], 3),
                    "max_s": round(lags[-1], 3),
                },
                indent=2,
            )
        )
        assert lags[-1] < 5.0, lags
