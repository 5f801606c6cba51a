"""The dashboard in a real headless browser (Debian's Chromium, driven by Playwright): it renders,
its numbers are the API's written the Vietnamese way, the language switch changes every label, and
screenshots are kept under test-artifacts/."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from services.reporting.bootstrap import create_app
from tests.reporting.conftest import drop_when_free
from tests.reporting.support import vn_format as fmt
from tests.reporting.support.demo import dashboard_history
from tests.reporting.support.harness import bearer, open_reporting, settings_for
from tests.support.infra import create_database

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Served:
    url: str
    token: str  # an analyst's: reports:read and reports:detail

    def __str__(self) -> str:
        return self.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
async def server(tmp_path_factory) -> AsyncIterator[Served]:
    """The reporting service over HTTP on a free local port, its read models fed with a history."""
    name, url = await create_database("repd")
    settings = settings_for(tmp_path_factory.mktemp("dashboard"), url)
    try:
        async with open_reporting(settings) as reporting:
            await reporting.feed(dashboard_history())
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings),
                    host="127.0.0.1",
                    port=port,
                    log_config=None,
                    access_log=False,
                    lifespan="on",
                )
            )
            server.install_signal_handlers = lambda: None  # the test process keeps its signals
            task = asyncio.ensure_future(server.serve())
            while not server.started:
                assert not task.done(), task.exception()
                await asyncio.sleep(0.02)
            try:
                yield Served(
                    f"http://127.0.0.1:{port}", bearer(settings)["Authorization"].split()[1]
                )
            finally:
                server.should_exit = True
                await task
    finally:
        await drop_when_free(name)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "scripts/browser.sh installs Debian's chromium"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 1000}, locale="vi-VN")
    page = await context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))  # type: ignore[attr-defined]
    yield page
    await context.close()


async def api(base: Served, path: str, public: bool = False, **params) -> dict:
    """The API as the analyst reads it (or, `public`, without a token)."""
    async with httpx.AsyncClient(
        base_url=base.url, headers={} if public else base.headers
    ) as client:
        response = await client.get(path, params=params)
        response.raise_for_status()
        return response.json()


async def sign_in(page: Page, server: Served) -> None:
    """The page keeps the token pasted in its banner for the tab: put the analyst's there."""
    await page.add_init_script(f"sessionStorage.setItem('reporting.token', '{server.token}')")


async def text(page: Page, testid: str) -> str:
    return (await page.get_by_test_id(testid).inner_text()).strip()


class TestTheFormats:
    def test_amounts_and_counts_are_written_the_vietnamese_way(self):
        assert fmt.money(212_734_560_000) == "212,7 tỷ đồng"
        assert fmt.money(31_726_400_000, "en") == "31.7 billion VND"
        assert fmt.integer(1_533) == "1.533" and fmt.integer(10_584, "en") == "10,584"
        assert fmt.share(254, 1000) == "25,4%" and fmt.share(1, 3, "en") == "33.3%"


class TestTheDashboard:
    async def test_it_renders_the_apis_numbers_in_vietnamese_and_switches_to_english(
        self, server, page
    ):
        await sign_in(page, server)
        await page.goto(f"{server}/dashboard")
        await page.wait_for_selector('body[data-rendered="vi"]')
        periods = await api(server, "/v1/periods")
        period = periods["default_period"]
        assert period == "2023-06"
        kpis = (await api(server, "/v1/kpis", period=period))["figures"]
        progress = (await api(server, "/v1/targets/progress", as_of=period))["targets"][0]
        target = progress["target"]
        scope = {"scheme": target["schemes"], "area_type": target["area_type"]}
        districts = await api(
            server, "/v1/breakdowns/district", period=period, sort="-share", **scope
        )
        schemes = await api(server, "/v1/breakdowns/scheme", period=period)

        # Vietnamese labels and numbers.
        assert (
            await page.locator("h1").inner_text()
            == "Tiến độ chi trả an sinh xã hội không dùng tiền mặt"
        )
        assert await page.locator("html").get_attribute("lang") == "vi"
        assert await text(page, "kpi-people-paid") == fmt.integer(kpis["people_paid"])
        assert await text(page, "kpi-people-cashless") == fmt.integer(kpis["people_cashless"])
        assert await text(page, "kpi-share") == fmt.share(
            kpis["people_cashless"], kpis["people_paid"]
        )
        assert await text(page, "kpi-amount") == fmt.money(kpis["paid_amount"])
        assert (await text(page, "kpi-amount")).endswith(" tỷ đồng")
        assert await text(page, "kpi-claims") == fmt.integer(kpis["claims_received"])
        assert await text(page, "kpi-decisions") == fmt.integer(kpis["decisions_approved"])
        assert await text(page, "kpi-period") == "Tháng 06/2023"
        channels = await api(server, "/v1/breakdowns/channel", period=period)
        shown = [
            await row.locator("td").all_inner_texts()
            for row in await page.locator("#channel-table tbody tr").all()
        ]
        assert shown == [
            [
                r["name_vi"],
                fmt.integer(r["people_paid"]),
                fmt.share(r["people_paid"], channels["total"]["people_paid"]),
                fmt.money(r["paid_amount"]),
            ]
            for r in channels["rows"]
        ]

        # The target gauge and its gap.
        expected_share = fmt.share(progress["people_cashless"], progress["people_paid"])
        assert await page.get_by_test_id("gauge-share").text_content() == expected_share
        assert await text(page, "target-share") == expected_share
        assert await text(page, "target-goal") == "25,0%"
        status = {
            "REACHED": "Đã đạt",
            "ON_TRACK": "Đúng tiến độ",
            "AT_RISK": "Có nguy cơ không đạt",
        }
        assert await text(page, "target-status") == status[progress["status"]]
        assert await text(page, "target-deadline") == "31/12/2023"
        if progress["gap_pp"] > 0:
            assert await text(page, "target-gap") == f"{progress['gap_pp']:.1f} điểm %".replace(
                ".", ","
            )

        # Urban and rural shares over time: one point per period per area type.
        for period_code in periods["periods"]:
            assert await page.get_by_test_id(f"trend-point-URBAN-{period_code}").count() == 1
            assert await page.get_by_test_id(f"trend-point-RURAL-{period_code}").count() == 1

        # Districts ranked by share, laggards (below the target) highlighted, totals as the API's.
        rows = page.locator("#areas-table tbody tr")
        assert await rows.count() == len(districts["rows"]) == 9
        for index, row in enumerate(districts["rows"]):
            cells = await rows.nth(index).locator("td").all_inner_texts()
            assert cells[1] == row["name_vi"]
            assert cells[3:] == [
                fmt.integer(row["people_paid"]),
                fmt.integer(row["people_cashless"]),
                fmt.share(row["people_cashless"], row["people_paid"]),
                fmt.money(row["paid_amount"]),
            ]
            below = row["people_cashless"] * 100 < target["target_percent"] * row["people_paid"]
            assert ("laggard" in (await rows.nth(index).get_attribute("class") or "")) == below
        assert await page.locator("#areas-table tbody tr.laggard").count() >= 1
        total = await page.locator("#areas-table tfoot td").all_inner_texts()
        assert total[3] == fmt.integer(districts["total"]["people_paid"])
        assert total[6] == fmt.money(districts["total"]["paid_amount"])

        # Schemes.
        scheme_rows = page.get_by_test_id("scheme-row")
        assert await scheme_rows.count() == len(schemes["rows"])
        pension = next(r for r in schemes["rows"] if r["code"] == "PENSION")
        pension_row = page.locator('[data-testid="scheme-row"][data-code="PENSION"]')
        assert await pension_row.locator(".bar-label").inner_text() == "Lương hưu"
        assert (
            fmt.money(pension["paid_amount"])
            in await pension_row.locator(".bar-figures").inner_text()
        )

        # Exports point at the API with the same filters.
        href = await page.get_by_test_id("export-areas-xlsx").get_attribute("href")
        assert href.startswith("/v1/exports/district.xlsx?") and "period=2023-06" in href
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
            assert (await client.get(href)).status_code == 200

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "reporting-dashboard-vi.png"), full_page=True)

        # The switch: every label in English, numbers the English way.
        await page.get_by_test_id("lang-switch").click()
        await page.wait_for_selector('body[data-rendered="en"]')
        assert (
            await page.locator("h1").inner_text()
            == "Progress toward cashless social-security payments"
        )
        assert await page.locator("html").get_attribute("lang") == "en"
        assert await page.get_by_test_id("lang-switch").inner_text() == "Tiếng Việt"
        assert await text(page, "kpi-amount") == fmt.money(kpis["paid_amount"], "en")
        assert await text(page, "kpi-people-paid") == fmt.integer(kpis["people_paid"], "en")
        assert await text(page, "target-deadline") == "31 Dec 2023"
        headers = await page.locator("#areas-table thead th").all_inner_texts()
        assert headers[1:] == [
            "Area",
            "Type",
            "People paid",
            "Paid without cash",
            "Share",
            "Amount paid",
        ]
        assert await pension_row.locator(".bar-label").inner_text() == "Pension"
        vietnamese_left = await page.locator("[data-i18n]").evaluate_all(
            "els => els.filter(e => /[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]/i.test(e.textContent))"
            ".map(e => e.dataset.i18n)"
        )
        assert vietnamese_left == []
        await page.screenshot(path=str(ARTIFACTS / "reporting-dashboard-en.png"), full_page=True)

        await page.get_by_test_id("lang-switch").click()
        await page.wait_for_selector('body[data-rendered="vi"]')
        assert await text(page, "kpi-amount") == fmt.money(kpis["paid_amount"])
        assert page.errors == []  # type: ignore[attr-defined]

    async def test_the_commune_table_ranks_every_commune(self, server, page):
        await sign_in(page, server)
        await page.goto(f"{server}/dashboard")
        await page.wait_for_selector('body[data-rendered="vi"]')
        progress = (await api(server, "/v1/targets/progress", as_of="2023-06"))["targets"][0]
        communes = await api(
            server,
            "/v1/breakdowns/commune",
            period="2023-06",
            sort="-share",
            scheme=progress["target"]["schemes"],
            area_type="URBAN",
        )
        await page.get_by_test_id("level-commune").click()
        rows = page.locator("#areas-table tbody tr")
        await page.wait_for_function(
            f"document.querySelectorAll('#areas-table tbody tr').length === {len(communes['rows'])}"
        )
        first = await rows.nth(0).locator("td").all_inner_texts()
        assert first[1] == communes["rows"][0]["name_vi"]
        shares = [
            r["people_cashless"] / r["people_paid"] for r in communes["rows"] if r["people_paid"]
        ]
        assert shares == sorted(shares, reverse=True)
        laggards = sum(r["people_cashless"] * 4 < r["people_paid"] for r in communes["rows"])
        assert await page.locator("#areas-table tbody tr.laggard").count() == laggards
        assert page.errors == []  # type: ignore[attr-defined]


class TestThePublicView:
    async def test_without_a_token_small_communes_are_hidden_and_totals_exact(self, server, page):
        await page.goto(f"{server}/dashboard")
        await page.wait_for_selector('body[data-rendered="vi"]')
        assert await page.get_by_test_id("suppression-note").is_visible()
        assert "dưới 5 người" in await text(page, "suppression-note")
        progress = (await api(server, "/v1/targets/progress", as_of="2023-06"))["targets"][0]
        params = {
            "period": "2023-06",
            "sort": "-share",
            "scheme": progress["target"]["schemes"],
            "area_type": "URBAN",
        }
        shown = await api(server, "/v1/breakdowns/commune", public=True, **params)
        exact = await api(server, "/v1/breakdowns/commune", **params)
        hidden = [r["code"] for r in shown["rows"] if r["suppressed"]]
        assert len(hidden) >= 2
        await page.get_by_test_id("level-commune").click()
        await page.wait_for_function(
            f"document.querySelectorAll('#areas-table tbody tr').length === {len(shown['rows'])}"
        )
        rows = page.locator('#areas-table tbody tr[data-suppressed="true"]')
        assert await rows.count() == len(hidden)
        cells = await rows.nth(0).locator("td").all_inner_texts()
        assert cells[3:] == ["Ẩn"] * 4
        for code in hidden:
            row = next(r for r in exact["rows"] if r["code"] == code)
            shown_row = page.locator(f'#areas-table tbody tr[data-code="{code}"]')
            assert fmt.money(row["paid_amount"]) not in await shown_row.inner_text()
        total = await page.locator("#areas-table tfoot td").all_inner_texts()
        assert total[3] == fmt.integer(exact["total"]["people_paid"])
        assert total[6] == fmt.money(exact["total"]["paid_amount"])
        assert page.errors == []  # type: ignore[attr-defined]
