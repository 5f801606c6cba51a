"""The article's unemployment figures, fed as intake's and payout's events through the real Kafka
broker and read back from the API exactly."""

from __future__ import annotations

import pytest

from tests.reporting.support import article as a
from tests.reporting.support.harness import open_reporting, settings_for

UNEMPLOYMENT_SUPPORT = ["UNEMPLOYMENT", "VOCATIONAL_TRAINING"]


@pytest.fixture
async def reporting_kafka(tmp_path, reporting_database, kafka_bootstrap):
    """PostgreSQL and the real broker, with the worker's batches at 2,000 events (a backlog of 38,000)."""
    settings = settings_for(
        tmp_path, await reporting_database("repa"), kafka_bootstrap, consumer_batch_size=2000
    )
    async with open_reporting(settings, namespace_kafka=True) as reporting:
        yield reporting


class TestTheArticleFigures:
    async def test_2022_q1_2023_and_overseas_labour_read_back_exactly(self, reporting_kafka):
        stream = a.article_stream()
        reporting_kafka.start_worker()
        await reporting_kafka.publish(stream.events)
        await reporting_kafka.wait_caught_up(timeout=240)

        # 2022: over 11,000 applications, 10,584 decisions, over 212.7 billion VND incl. training support.
        y2022 = await reporting_kafka.kpis(
            period_from="2022-01", period_to="2022-12", scheme=UNEMPLOYMENT_SUPPORT
        )
        assert y2022["claims_received"] == a.RECEIVED_2022 > 11_000
        assert y2022["decisions_approved"] == 10_584
        assert y2022["decisions_rejected"] == a.REJECTED_2022
        assert y2022["paid_amount"] == a.PAID_2022
        assert 212_700_000_000 < y2022["paid_amount"] < 212_800_000_000
        training = await reporting_kafka.kpis(
            period_from="2022-01", period_to="2022-12", scheme="VOCATIONAL_TRAINING"
        )
        assert training["paid_amount"] == a.TRAINING_2022[0] * a.TRAINING_2022[1]

        # Q1 2023: 2,203 applications, 1,533 decisions, over 31.7 billion VND, all to personal accounts.
        q1 = await reporting_kafka.kpis(
            period_from="2023-01", period_to="2023-03", scheme=UNEMPLOYMENT_SUPPORT
        )
        assert (q1["claims_received"], q1["decisions_approved"]) == (2_203, 1_533)
        assert q1["paid_amount"] == a.PAID_Q1_2023
        assert 31_700_000_000 < q1["paid_amount"] < 31_800_000_000
        assert q1["cashless_amount"] == q1["paid_amount"]
        assert q1["cashless_share_percent"] == 100.0
        by_channel = await reporting_kafka.get(
            "/v1/breakdowns/channel",
            period_from="2023-01",
            period_to="2023-03",
            scheme="UNEMPLOYMENT",
        )
        assert [r["code"] for r in by_channel["rows"]] == ["OWN_ACCOUNT"]

        # Since early 2023: 144 overseas-labour support files paid without cash, over 1.7 billion VND.
        overseas = await reporting_kafka.kpis(period_from="2023-01", scheme="OVERSEAS_LABOUR")
        assert (overseas["people_paid"], overseas["people_cashless"]) == (144, 144)
        assert overseas["paid_amount"] == a.OVERSEAS_PAID
        assert 1_700_000_000 < overseas["paid_amount"] < 1_800_000_000
        agencies = await reporting_kafka.get("/v1/breakdowns/agency", scheme="OVERSEAS_LABOUR")
        assert [(r["code"], r["paid_count"]) for r in agencies["rows"]] == [("ESC", 144)]

        # The same numbers per scheme for 2022, and spread over the province's 9 districts.
        schemes = await reporting_kafka.get(
            "/v1/breakdowns/scheme", period_from="2022-01", period_to="2022-12"
        )
        assert {r["code"]: r["paid_amount"] for r in schemes["rows"]} == {
            "UNEMPLOYMENT": a.PAID_2022 - a.TRAINING_2022[0] * a.TRAINING_2022[1],
            "VOCATIONAL_TRAINING": a.TRAINING_2022[0] * a.TRAINING_2022[1],
        }
        districts = await reporting_kafka.get(
            "/v1/breakdowns/district", period_from="2022-01", period_to="2022-12"
        )
        assert len(districts["rows"]) == 9
        assert districts["total"]["paid_amount"] == a.PAID_2022
