"""Small cells: a reader without `reports:detail` (an anonymous one in development included) never
sees a cell of fewer than 5 people, nor one that would let it be recovered by subtraction from a
published total; totals stay exact. Outside development every read needs `reports:read`."""

from __future__ import annotations

import csv
import io

import pytest

from services.reporting.domain.disclosure import THRESHOLD, cell_size, suppressed_cells
from services.reporting.domain.figures import Figures
from tests.reporting.support import events as ev
from tests.reporting.support.harness import bearer, open_reporting, settings_for

PERIOD = "2023-05"
BENEFIT = 5_460_000
# Unemployment recipients per commune: one alone in an urban ward of Vĩnh Yên (243).
RECIPIENTS = {
    ev.URBAN_COMMUNE: 1,
    ev.RURAL_COMMUNE: 6,
    ev.RURAL_OTHER_DISTRICT: 8,
    ev.TOWNSHIP: 7,
    "08710": 9,
    "08716": 12,
    "08734": 2,
}  # 08734: Phường Trưng Trắc, Phúc Yên (244)


def history() -> list:
    payloads = []
    for commune, people in RECIPIENTS.items():
        for n in range(people):
            f = ev.facts(
                f"u-{commune}-{n}",
                f"u-{commune}-{n}",
                PERIOD,
                BENEFIT + n * 1000,
                scheme="UNEMPLOYMENT",
                commune=commune,
                channel="OWN_ACCOUNT" if n % 2 else "CASH_POST_OFFICE",
            )
            payloads.append(ev.settled(f) if n % 2 else ev.paid_cash(f))
    return payloads


def assert_unrecoverable(detail_rows: list[dict], shown_rows: list[dict], key: str | None) -> None:
    """In every group (all rows, or rows sharing `key`), the hidden cells are none, or at least two
    describing at least THRESHOLD people together: subtracting the visible ones from the group's
    total gives no single small cell."""
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(detail_rows):
        groups.setdefault(str(row.get(key)) if key else "all", []).append(index)
    for members in groups.values():
        hidden = [i for i in members if shown_rows[i]["suppressed"]]
        if not hidden:
            continue
        if not any(detail_rows[i]["people_paid"] for i in members if i not in hidden):
            continue  # the group's total is the hidden cells themselves: small, so hidden where published
        assert len(hidden) >= 2, (key, [detail_rows[i]["code"] for i in hidden])
        assert sum(detail_rows[i]["people_paid"] for i in hidden) >= THRESHOLD


class TestTheRule:
    def test_a_small_cell_is_hidden_with_the_next_smallest_of_its_group(self):
        assert suppressed_cells([1, 10, 20, 7], [[0, 1, 2, 3]]) == {0, 3}

    def test_hidden_cells_together_describe_at_least_the_threshold(self):
        assert suppressed_cells([1, 1, 10, 20], [[0, 1, 2, 3]]) == {0, 1, 2}
        assert suppressed_cells([1, 4, 10, 20], [[0, 1, 2, 3]]) == {0, 1}

    def test_empty_cells_are_shown_and_never_hidden_for_others(self):
        assert suppressed_cells([0, 2, 0, 9], [[0, 1, 2, 3]]) == {1, 3}
        assert suppressed_cells([0, 0, 30], [[0, 1, 2]]) == set()

    def test_hiding_for_one_group_spreads_to_the_groups_it_touches(self):
        # Cells 0 and 1 form one district, 1 and 2 one area type: hiding 1 for the district exposes 2.
        assert suppressed_cells([2, 6, 9, 40], [[0, 1], [1, 2], [0, 1, 2, 3]]) == {0, 1, 2}

    def test_a_cell_counts_the_people_it_speaks_of_not_only_those_paid(self):
        assert cell_size(Figures(pending_count=3)) == 3
        assert cell_size(Figures(people_paid=2, claims_received=7)) == 7


@pytest.fixture
async def fed_small(reporting_pg):
    await reporting_pg.feed(history())
    return reporting_pg


class TestPublicReader:
    async def test_a_commune_with_one_recipient_does_not_show_the_benefit(self, fed_small):
        params = {"period": PERIOD, "scheme": "UNEMPLOYMENT"}
        shown = (await fed_small.public.get("/v1/breakdowns/commune", params=params)).json()
        detail = await fed_small.get("/v1/breakdowns/commune", **params)
        assert shown["suppressed_below"] == THRESHOLD and detail["suppressed_below"] is None
        alone = next(r for r in shown["rows"] if r["code"] == ev.URBAN_COMMUNE)
        assert alone["suppressed"] is True
        assert (
            alone["people_paid"] is None
            and alone["paid_amount"] is None
            and alone["cashless_amount"] is None
        )
        # The total is the true one, not the sum of what is shown.
        assert shown["total"] == detail["total"]
        assert shown["total"]["people_paid"] == sum(RECIPIENTS.values())
        # Visible cells are exact; the hidden ones cannot be recovered by subtraction.
        for seen, exact in zip(shown["rows"], detail["rows"], strict=True):
            assert seen["code"] == exact["code"]
            if not seen["suppressed"]:
                assert seen == exact
        for key in (None, "area_type"):
            assert_unrecoverable(detail["rows"], shown["rows"], key)
        assert sum(r["suppressed"] for r in shown["rows"]) >= 2
        assert all(r["suppressed"] is False for r in detail["rows"])

    async def test_cells_sharing_a_district_are_hidden_together(self, fed_small):
        params = {"period": PERIOD, "scheme": "UNEMPLOYMENT"}
        shown = (await fed_small.public.get("/v1/breakdowns/commune", params=params)).json()["rows"]
        detail = (await fed_small.get("/v1/breakdowns/commune", **params))["rows"]
        communes = {
            a["code"]: a["district_code"]
            for a in (await fed_small.get("/v1/areas", level="commune"))["areas"]
        }
        assert_unrecoverable(
            [{**r, "district": communes[r["code"]]} for r in detail], shown, "district"
        )

    async def test_key_figures_narrowed_to_a_small_cell_are_hidden(self, fed_small):
        params = {
            "period": PERIOD,
            "scheme": "UNEMPLOYMENT",
            "area_level": "commune",
            "area_code": ev.URBAN_COMMUNE,
        }
        shown = (await fed_small.public.get("/v1/kpis", params=params)).json()["figures"]
        assert shown["suppressed"] is True and shown["paid_amount"] is None
        assert (await fed_small.kpis(**params))["paid_amount"] == BENEFIT
        wide = (await fed_small.public.get("/v1/kpis", params={"period": PERIOD})).json()["figures"]
        assert wide["suppressed"] is False and wide["people_paid"] == sum(RECIPIENTS.values())

    async def test_time_series_points_of_a_small_cell_are_hidden(self, fed_small):
        params = {"split": "district", "scheme": "UNEMPLOYMENT", "area_type": "URBAN"}
        shown = (await fed_small.public.get("/v1/timeseries", params=params)).json()
        detail = await fed_small.get("/v1/timeseries", **params)
        points = {(s["code"], p["period"]): p for s in shown["series"] for p in s["points"]}
        exact = {(s["code"], p["period"]): p for s in detail["series"] for p in s["points"]}
        small = [k for k, p in exact.items() if 0 < p["people_paid"] < THRESHOLD]
        assert small, "the history has a small urban cell"
        for k in small:
            assert points[k]["suppressed"] is True and points[k]["paid_amount"] is None
        hidden = [k for k, p in points.items() if p["suppressed"]]
        assert len(hidden) >= 2 or not hidden

    async def test_exports_leave_hidden_cells_empty_and_say_why(self, fed_small):
        params = {"period": PERIOD, "scheme": "UNEMPLOYMENT"}
        response = await fed_small.public.get(
            "/v1/exports/commune.csv", params=params | {"lang": "en"}
        )
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        header, body, total = rows[0], rows[1:-1], rows[-1]
        assert header[-1] == "Note"
        amount = header.index("Amount paid (VND)")
        alone = next(r for r in body if r[0] == ev.URBAN_COMMUNE)
        assert alone[2:-1] == [""] * (len(header) - 3) and "fewer than 5 people" in alone[-1]
        detail = await fed_small.get("/v1/breakdowns/commune", **params)
        assert int(total[amount]) == detail["total"]["paid_amount"]
        assert sum(r[-1] != "" for r in body) >= 2
        analyst = await fed_small.client.get(
            "/v1/exports/commune.csv", params=params | {"lang": "en"}
        )
        exact = list(csv.reader(io.StringIO(analyst.content.decode("utf-8-sig"))))
        assert exact[0][-1] != "Note"
        assert int(next(r for r in exact if r[0] == ev.URBAN_COMMUNE)[amount]) == BENEFIT

    async def test_a_read_scope_without_detail_sees_the_public_view(self, fed_small):
        params = {"period": PERIOD, "scheme": "UNEMPLOYMENT"}
        reader = bearer(fed_small.settings, {"reports:read"})
        rows = (
            await fed_small.public.get("/v1/breakdowns/commune", params=params, headers=reader)
        ).json()["rows"]
        assert next(r for r in rows if r["code"] == ev.URBAN_COMMUNE)["suppressed"] is True


class TestProduction:
    async def test_every_read_needs_reports_read_and_only_detail_shows_small_cells(
        self, tmp_path, reporting_database
    ):
        settings = settings_for(
            tmp_path,
            await reporting_database("repp"),
            environment="production",
        )
        assert settings.reads_need_token and not settings.require_auth
        async with open_reporting(settings) as reporting:
            await reporting.feed(history())
            reads = [
                path
                for path, operations in reporting.app.openapi()["paths"].items()
                if path.startswith("/v1") and "get" in operations
            ]
            assert len(reads) >= 10
            for path in reads:
                concrete = (
                    path.replace("{dimension}", "commune")
                    .replace("{fmt}", "csv")
                    .replace("{target_id}", "none")
                )
                assert (await reporting.public.get(concrete)).status_code == 401, path
                wrong = bearer(settings, {"reports:write"})
                assert (await reporting.public.get(concrete, headers=wrong)).status_code == 403, (
                    path
                )
            params = {"period": PERIOD, "scheme": "UNEMPLOYMENT"}
            reader = bearer(settings, {"reports:read"})
            shown = (
                await reporting.public.get("/v1/breakdowns/commune", params=params, headers=reader)
            ).json()
            assert (
                next(r for r in shown["rows"] if r["code"] == ev.URBAN_COMMUNE)["suppressed"]
                is True
            )
            exact = await reporting.get("/v1/breakdowns/commune", **params)
            assert (
                next(r for r in exact["rows"] if r["code"] == ev.URBAN_COMMUNE)["paid_amount"]
                == BENEFIT
            )
            assert (
                await reporting.public.get("/dashboard")
            ).status_code == 200  # the page holds no figures
