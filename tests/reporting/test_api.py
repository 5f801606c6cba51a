"""The HTTP API on PostgreSQL read models: breakdowns that add up, filters, exports, targets, auth."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from services.reporting.settings import ReportingSettings
from shared.admin_units import LIST_2025
from shared.periods import between
from tests.reporting.support import events as ev
from tests.reporting.support.harness import open_reporting, settings_for
from tests.support import tokens

PAYMENT_FIGURES = (
    "people_paid",
    "people_cashless",
    "paid_count",
    "paid_amount",
    "cashless_count",
    "cashless_amount",
    "pending_count",
    "pending_amount",
    "failed_count",
    "failed_amount",
    "returned_count",
    "returned_amount",
    "cancelled_count",
    "cancelled_amount",
)
CLAIM_FIGURES = ("claims_received", "decisions_approved", "decisions_rejected")
DIMENSIONS = (
    "province",
    "district",
    "commune",
    "area-type",
    "scheme",
    "agency",
    "channel",
    "period",
)
FILTER_SETS = [
    {},
    {"period": "2023-05"},
    {"period_from": "2023-05", "period_to": "2023-06", "area_type": "URBAN"},
    {"scheme": ["PENSION", "SI_ALLOWANCE"], "area_level": "district", "area_code": "246"},
    {"channel": ["OWN_ACCOUNT", "AUTHORISED_ACCOUNT"], "agency": "BHXH"},
    {"area_level": "commune", "area_code": ev.TOWNSHIP},
]


@pytest.fixture
def fed(fed_reporting):
    return fed_reporting


def token(settings: ReportingSettings, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(scopes, sub='reporting-tests')}"}


class TestBreakdownsAddUp:
    @pytest.mark.parametrize("filters", FILTER_SETS, ids=lambda f: ",".join(f) or "none")
    async def test_every_breakdown_sums_exactly_to_the_total(self, fed, filters):
        reporting, _ = fed
        total = await reporting.kpis(**filters)
        assert total["people_paid"] > 0
        for dimension in DIMENSIONS:
            body = await reporting.get(f"/v1/breakdowns/{dimension}", **filters)
            compared = (
                PAYMENT_FIGURES
                if dimension == "channel" or "channel" in filters
                else PAYMENT_FIGURES + CLAIM_FIGURES
            )
            for name in compared:
                assert sum(r[name] for r in body["rows"]) == body["total"][name] == total[name], (
                    dimension,
                    name,
                )

    async def test_the_time_series_adds_up_to_the_period_breakdown(self, fed):
        reporting, _ = fed
        series = await reporting.get("/v1/timeseries", split="area-type")
        periods = (await reporting.get("/v1/breakdowns/period"))["rows"]
        codes = [r["code"] for r in periods]
        assert series["periods"] == between(codes[0], codes[-1])
        for row in periods:
            points = [
                p for s in series["series"] for p in s["points"] if p["period"] == row["code"]
            ]
            assert sum(p["people_paid"] for p in points) == row["people_paid"]
            assert sum(p["paid_amount"] for p in points) == row["paid_amount"]

    async def test_the_figures_match_the_history(self, fed):
        reporting, expected = fed
        by_channel = {
            r["code"]: r
            for r in (await reporting.get("/v1/breakdowns/channel", period="2023-06"))["rows"]
        }
        for channel, row in by_channel.items():
            assert row["people_paid"] == expected.people_where(period="2023-06", channel=channel)
            assert row["paid_amount"] == expected.amount_where(period="2023-06", channel=channel)
        districts = {r["code"]: r for r in (await reporting.get("/v1/breakdowns/district"))["rows"]}
        assert set(districts) == {"243", "246"}
        assert districts["246"]["name_vi"] == "Huyện Lập Thạch"
        assert districts["246"]["paid_amount"] == expected.amount_where(district="246")


class TestSorting:
    async def test_areas_rank_by_cashless_share(self, fed):
        reporting, _ = fed
        rows = (await reporting.get("/v1/breakdowns/commune", period="2023-05", sort="-share"))[
            "rows"
        ]
        shares = [r["people_cashless"] / r["people_paid"] for r in rows if r["people_paid"]]
        assert shares == sorted(shares, reverse=True)
        assert {r["area_type"] for r in rows} == {"URBAN", "RURAL"}


class TestFilters:
    @pytest.mark.parametrize(
        ("params", "pointer"),
        [
            ({"period": "2023-13"}, "/period"),
            ({"period_from": "2023-06", "period_to": "2023-05"}, "/period_from"),
            ({"area_code": "243"}, "/area_level"),
            ({"scheme": "PENSIONS"}, "/scheme/0"),
            ({"period": "2023-05", "period_to": "2023-06"}, "/period"),
        ],
    )
    async def test_bad_filters_are_answered_with_a_pointer(self, fed, params, pointer):
        response = await fed[0].client.get("/v1/kpis", params=params)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert pointer in [e["pointer"] for e in response.json()["errors"]]

    async def test_an_unknown_dimension_is_refused(self, fed):
        assert (await fed[0].client.get("/v1/breakdowns/bank")).status_code == 422


class TestExports:
    async def test_csv_holds_the_breakdown_and_its_total(self, fed):
        reporting, _ = fed
        body = await reporting.get("/v1/breakdowns/district", period="2023-05")
        response = await reporting.client.get(
            "/v1/exports/district.csv", params={"period": "2023-05"}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        assert response.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0][:4] == [
            "Mã",
            "Tên",
            "Số người được chi trả",
            "Số người nhận không dùng tiền mặt",
        ]
        assert [r[0] for r in rows[1:-1]] == [r["code"] for r in body["rows"]]
        assert rows[-1][1] == "Tổng cộng"
        amount = rows[0].index("Số tiền đã chi (đồng)")
        assert int(rows[-1][amount]) == body["total"]["paid_amount"]
        assert sum(int(r[amount]) for r in rows[1:-1]) == body["total"]["paid_amount"]

    async def test_xlsx_holds_the_same_numbers_in_english(self, fed):
        reporting, _ = fed
        body = await reporting.get("/v1/breakdowns/scheme")
        response = await reporting.client.get("/v1/exports/scheme.xlsx", params={"lang": "en"})
        assert response.status_code == 200
        sheet = load_workbook(io.BytesIO(response.content)).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:3] == ("Code", "Name", "People paid")
        assert {r[0]: r[2] for r in rows[1:-1]} == {
            r["code"]: r["people_paid"] for r in body["rows"]
        }
        assert rows[-1][1] == "Total" and rows[-1][2] == body["total"]["people_paid"]
        assert {r[1] for r in rows[1:-1]} >= {"Pension"}


class TestTargets:
    async def test_the_2023_target_is_seeded_with_two_later_examples(self, reporting_pg):
        targets = await reporting_pg.get("/v1/targets")
        first = next(t for t in targets if t["code"] == "vinh-phuc-2023-urban-pension-si")
        assert (
            first["area_type"],
            first["schemes"],
            first["target_percent"],
            first["deadline"],
        ) == ("URBAN", ["PENSION", "SI_ALLOWANCE"], 25.0, "2023-12-31")
        assert len(targets) == 3

    async def test_progress_reads_share_gap_trend_and_projection(self, reporting_pg):
        # Urban pensioners over six months: 10, 12, ..., 20 cashless out of 100.
        payloads = []
        for m, cashless in enumerate(range(10, 22, 2)):
            period = f"2023-{m + 1:02d}"
            for person in range(100):
                channel = "OWN_ACCOUNT" if person < cashless else "CASH_POST_OFFICE"
                f = ev.facts(
                    f"i-{period}-{person}", f"p{person}", period, 3_000_000, channel=channel
                )
                payloads.append(ev.settled(f) if person < cashless else ev.paid_cash(f))
            rural = ev.facts(
                f"r-{period}",
                "rural-person",
                period,
                3_000_000,
                commune=ev.RURAL_COMMUNE,
                channel="CASH_POST_OFFICE",
            )
            payloads.append(ev.paid_cash(rural))
        await reporting_pg.feed(payloads)
        targets = await reporting_pg.get("/v1/targets")
        first = next(t for t in targets if t["code"] == "vinh-phuc-2023-urban-pension-si")
        progress = await reporting_pg.get(f"/v1/targets/{first['id']}/progress", as_of="2023-07")
        assert progress["period"] == "2023-06"
        assert (progress["people_paid"], progress["people_cashless"]) == (100, 20)
        assert progress["share_percent"] == 20.0
        assert progress["gap_pp"] == 5.0
        assert progress["trend_pp_per_month"] == 2.0
        assert progress["projected_date"] == "2023-09-30"
        assert progress["status"] == "ON_TRACK"
        assert [w["share_percent"] for w in progress["window"]] == [
            10.0,
            12.0,
            14.0,
            16.0,
            18.0,
            20.0,
        ]
        listed = await reporting_pg.get("/v1/targets/progress", as_of="2023-07")
        by_code = {p["target"]["code"]: p for p in listed["targets"]}
        assert by_code["vinh-phuc-2023-urban-pension-si"]["status"] == "ON_TRACK"
        # 50% of urban monthly beneficiaries by the end of 2025: +2 points a month from 20% in June 2023.
        urban = by_code["example-national-2025-urban"]
        assert (urban["status"], urban["projected_date"]) == ("ON_TRACK", "2024-09-30")
        # Rural: one person, always in cash: a flat trend never reaches 30%.
        rural = by_code["example-national-2025-rural"]
        assert (rural["status"], rural["share_percent"], rural["projected_date"]) == (
            "AT_RISK",
            0.0,
            None,
        )

    async def test_targets_are_managed_with_the_write_scope(self, reporting_pg):
        client, settings = reporting_pg.client, reporting_pg.settings
        body = {
            "code": "vinh-yen-2024",
            "title_vi": "Vĩnh Yên 2024",
            "title_en": "Vinh Yen 2024",
            "area_type": "ALL",
            "area_level": "district",
            "area_code": "243",
            "schemes": ["PENSION"],
            "target_percent": "40.5",
            "deadline": "2024-12-31",
        }
        assert (await reporting_pg.public.post("/v1/targets", json=body)).status_code == 401
        assert (
            await client.post("/v1/targets", json=body, headers=token(settings, "reports:read"))
        ).status_code == 403
        created = await client.post(
            "/v1/targets", json=body, headers=token(settings, "reports:write")
        )
        assert created.status_code == 201, created.text
        target = created.json()
        assert (target["target_percent"], target["area_code"]) == (40.5, "243")
        await reporting_pg.feed(
            [
                ev.settled(
                    ev.facts("d1", "p1", "2024-03", 3_000_000)
                ),  # Vĩnh Yên (243), own account
                ev.paid_cash(
                    ev.facts("d2", "p2", "2024-03", 3_000_000, channel="CASH_POST_OFFICE")
                ),
                ev.paid_cash(
                    ev.facts(
                        "d3",
                        "p3",
                        "2024-03",
                        3_000_000,
                        commune=ev.RURAL_COMMUNE,
                        channel="CASH_POST_OFFICE",
                    )
                ),
                ev.settled(
                    ev.facts("d4", "p4", "2024-03", 3_000_000, commune=ev.TOWNSHIP)
                ),  # Lập Thạch (246)
            ]
        )
        progress = await reporting_pg.get(f"/v1/targets/{target['id']}/progress", as_of="2024-04")
        assert (
            progress["people_paid"],
            progress["people_cashless"],
            progress["share_percent"],
        ) == (3, 1, 33.33)
        assert progress["status"] == "AT_RISK"
        again = await client.post(
            "/v1/targets", json=body, headers=token(settings, "reports:write")
        )
        assert again.status_code == 409
        changed = await client.put(
            f"/v1/targets/{target['id']}",
            json=body | {"target_percent": 45},
            headers=token(settings, "reports:write"),
        )
        assert changed.json()["target_percent"] == 45.0
        assert (await reporting_pg.get(f"/v1/targets/{target['id']}"))["target_percent"] == 45.0
        deleted = await client.delete(
            f"/v1/targets/{target['id']}", headers=token(settings, "reports:write")
        )
        assert deleted.status_code == 204
        assert (await client.get(f"/v1/targets/{target['id']}")).status_code == 404

    @pytest.mark.parametrize(
        "change",
        [
            {"target_percent": 0},
            {"target_percent": "101"},
            {"schemes": []},
            {"area_level": "commune", "area_code": None},
            {"code": "Has Spaces"},
        ],
    )
    async def test_an_invalid_target_is_refused(self, fed, change):
        reporting, _ = fed
        body = {
            "code": "x",
            "title_vi": "x",
            "title_en": "x",
            "area_type": "URBAN",
            "schemes": ["PENSION"],
            "target_percent": 30,
            "deadline": "2024-12-31",
        } | change
        response = await reporting.client.post(
            "/v1/targets", json=body, headers=token(reporting.settings, "reports:write")
        )
        assert response.status_code == 422


@pytest.fixture(params=["postgres", "embedded"])
async def either_stack(request, tmp_path, reporting_database):
    """PostgreSQL read models, or the embedded default's SQLite."""
    url = await reporting_database("rept") if request.param == "postgres" else None
    async with open_reporting(settings_for(tmp_path, url)) as reporting:
        yield reporting


class TestTargetWritesOnBothStacks:
    async def test_a_refused_write_leaves_the_targets_as_they_were(self, either_stack):
        reporting = either_stack
        client, write = reporting.client, token(reporting.settings, "reports:write")
        body = {
            "code": "first",
            "title_vi": "Một",
            "title_en": "One",
            "area_type": "URBAN",
            "area_level": "province",
            "schemes": ["PENSION"],
            "target_percent": 30,
            "deadline": "2024-12-31",
        }
        assert (await client.post("/v1/targets", json=body, headers=write)).status_code == 201
        other = await client.post("/v1/targets", json=body | {"code": "other"}, headers=write)
        assert other.status_code == 201
        before = await reporting.get("/v1/targets")

        assert (await client.post("/v1/targets", json=body, headers=write)).status_code == 409
        clash = await client.put(
            f"/v1/targets/{other.json()['id']}", json=body | {"title_en": "Changed"}, headers=write
        )
        assert clash.status_code == 409
        missing = await client.put(
            "/v1/targets/no-such-target", json=body | {"code": "third"}, headers=write
        )
        assert missing.status_code == 404
        assert (await client.delete("/v1/targets/no-such-target", headers=write)).status_code == 404
        assert await reporting.get("/v1/targets") == before


class TestAreas:
    async def test_the_2023_list_has_nine_districts_and_136_communes_34_urban(self, fed):
        districts = await fed[0].get("/v1/areas", level="district")
        communes = await fed[0].get("/v1/areas", level="commune")
        assert len(districts["areas"]) == 9
        assert len(communes["areas"]) == 136
        assert sum(a["area_type"] == "URBAN" for a in communes["areas"]) == 34

    async def test_figures_from_july_2025_are_shown_on_the_new_units(self, reporting_pg):
        before = ev.facts("old", "p1", "2025-06", 1_000_000, commune="08713", list_date=LIST_2025)
        after = ev.facts("new", "p1", "2025-08", 1_000_000, commune="08713", list_date=LIST_2025)
        await reporting_pg.feed([ev.settled(before), ev.settled(after)])
        june = (await reporting_pg.get("/v1/breakdowns/commune", period="2025-06"))["rows"]
        august = (await reporting_pg.get("/v1/breakdowns/commune", period="2025-08"))["rows"]
        assert [(r["code"], r["name_vi"], r["key"]["list_date"]) for r in june] == [
            ("08713", "Phường Hội Hợp", LIST_2025.isoformat())
        ]
        assert [(r["code"], r["name_vi"], r["key"]["list_date"]) for r in august] == [
            ("08707", "Phường Vĩnh Yên", "2025-07-01")
        ]
        provinces = (await reporting_pg.get("/v1/breakdowns/province"))["rows"]
        assert {r["code"]: r["people_paid"] for r in provinces} == {"26": 1, "25": 1}


class TestAuthSetting:
    async def test_reads_are_open_by_default_and_closed_when_required(
        self, tmp_path, reporting_database, reporting_pg
    ):
        assert (await reporting_pg.public.get("/v1/kpis")).status_code == 200
        settings = settings_for(
            tmp_path / "closed", await reporting_database("repa"), require_auth=True
        )
        async with open_reporting(settings) as closed:
            assert (await closed.public.get("/v1/kpis")).status_code == 401
            assert (
                await closed.client.get("/v1/kpis", headers=token(settings, "reports:write"))
            ).status_code == 403
            assert (
                await closed.client.get("/v1/kpis", headers=token(settings, "reports:read"))
            ).status_code == 200
            assert (await closed.client.get("/dashboard")).status_code == 200


class TestPeriods:
    async def test_the_default_period_is_the_latest_complete_one_with_figures(self, fed):
        reporting, _ = fed
        body = await reporting.get("/v1/periods")
        assert body["default_period"] == "2023-06"
        assert body["periods"][-3:] == ["2023-04", "2023-05", "2023-06"]
        assert date.fromisoformat(body["latest_complete"] + "-01") < date.today()
