"""The officers' console in a real headless browser (Debian's Chromium, driven by Playwright),
against the whole stack on the embedded default (intake, payout and reporting in this process,
SQLite and the embedded event log; the bank sandbox, which also plays the post office and the
population registry, in a subprocess). The console is served by reporting at /console and calls
intake and payout on their own origins with the person's token (CORS).

What people do in it: a maker signs in, sees their queues and fixes an account that failed
verification; an officer who is maker and checker prepares the cycle and is refused when
approving it (four eyes: the page shows the server's problem); the agency's checker, a second
officer, decides an unemployment claim with the rule's calculation shown and approves the cycle;
the post office's staff record a cash handover; the maker reads the payments that failed for
good, the installments held and the anomalies, each with what to do next; the administrator
searches the audit trail. Screenshots of each
step are kept under test-artifacts/ (`make test` keeps them; open them with any image viewer)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from services.console.stack import console_url, with_console
from services.intake import bootstrap as intake
from services.intake.service_layer.users import DEMO_USERS
from services.intake.settings import IntakeSettings
from services.payout import bootstrap as payout
from services.payout.settings import PayoutSettings
from services.reporting import bootstrap as reporting
from services.reporting.settings import ReportingSettings
from services.stack import ServiceSpec, Stack
from shared.admin_units import LIST_2023
from shared.periods import period_of_date, vietnam_date
from shared.webhook_signing import dev_secret, signed_headers
from tests.intake import builders
from tests.support import tokens
from tests.support.sandbox import SandboxAdmin, SandboxProcess, free_port
from tests.support.waiting import wait_until

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
VCB = builders.VIETCOMBANK
WARD = "08707"  # Tích Sơn, Vĩnh Yên: one of the development post-office user's communes


@dataclass
class Served:
    stack: Stack
    sandbox: SandboxAdmin
    console: str
    intake: str
    payout: str
    ids: dict[str, Any]

    async def call(self, service: str, method: str, path: str, token: str, **kwargs: Any) -> Any:
        base = self.intake if service == "intake" else self.payout
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            answer = await client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        assert answer.status_code < 400, answer.text
        return answer.json()


def password_of(username: str) -> str:
    return DEMO_USERS[username].password


async def person_token(intake_url: str, username: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{intake_url}/oauth/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": password_of(username),
            },
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


async def client_token(intake_url: str, client_id: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{intake_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, f"{client_id}-dev-secret"),
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _roll_row(person: dict[str, str], **payment: str) -> dict[str, Any]:
    return {
        **person,
        "si_number": builders.si_number(),
        "commune_code": WARD,
        "commune_list_date": LIST_2023.isoformat(),
        "scheme": "PENSION",
        "decision_number": f"QD-CONSOLE-{person['national_id'][-6:]}",
        "amount_per_installment": 3_500_000,
        "start_period": "2020-01",
        **payment,
    }


def _person() -> dict[str, str]:
    row = builders.roll_row("PENSION")
    return {k: row[k] for k in ("national_id", "full_name", "date_of_birth")}


async def seed(served: Served) -> None:
    """Through the services' APIs only: BHXH's roll has a pensioner paid to an account the bank
    knows, one whose account no bank knows, one paid in cash in the ward, one whose account the
    bank has blocked (verified by name, refused when paid) and one the population registry
    records as deceased; the portal files an unemployment claim; the administrator loads the
    period's envelope."""
    paid, unknown, cash, blocked, deceased = (_person() for _ in range(5))
    good, new, blocked_account, deceased_account = (builders.account() for _ in range(4))
    await served.sandbox.seed_accounts(
        [
            {"bin": VCB, "account_number": good, "holder_name": paid["full_name"]},
            {"bin": VCB, "account_number": new, "holder_name": unknown["full_name"]},
            {
                "bin": VCB,
                "account_number": blocked_account,
                "holder_name": blocked["full_name"],
                "status": "BLOCKED",
            },
            {
                "bin": VCB,
                "account_number": deceased_account,
                "holder_name": deceased["full_name"],
            },
        ]
    )
    await served.sandbox.seed_population(
        [paid, unknown, cash, blocked, {**deceased, "status": "DECEASED"}]
    )
    bhxh = await client_token(served.intake, "bhxh")
    roll = [
        _roll_row(paid, payment_method="OWN_ACCOUNT", bank_bin=VCB, account_number=good),
        _roll_row(
            unknown, payment_method="OWN_ACCOUNT", bank_bin=VCB, account_number=builders.account()
        ),
        _roll_row(
            cash,
            payment_method="CASH_POST_OFFICE",
            cash_reason="bedridden: paid at home by the post office",
        ),
        _roll_row(
            blocked, payment_method="OWN_ACCOUNT", bank_bin=VCB, account_number=blocked_account
        ),
        _roll_row(
            deceased, payment_method="OWN_ACCOUNT", bank_bin=VCB, account_number=deceased_account
        ),
    ]
    uploaded = await served.call("intake", "POST", "/v1/roll/uploads", bhxh, json={"rows": roll})
    assert uploaded["accepted"] == 5, uploaded
    names = ("paid", "unknown", "cash", "blocked", "deceased")
    for name, row in zip(names, uploaded["rows"], strict=True):
        served.ids[name] = row["beneficiary_id"]
    served.ids["new_account"] = new
    portal = await client_token(served.intake, "portal")
    claim = builders.claim("UNEMPLOYMENT")
    filed = await served.call("intake", "POST", "/v1/claims", portal, json=claim)
    served.ids["claim"] = filed["claim_id"]
    served.ids["dossier"] = claim["portal_dossier_id"]
    admin = await person_token(served.intake, "administrator")
    period = served.ids["period"]
    await served.call(
        "payout",
        "PUT",
        "/v1/envelopes",
        admin,
        json={
            "envelopes": [
                {"period": period, "agency": "BHXH", "scheme": "PENSION", "amount": 10**10}
            ]
        },
    )
    operator = tokens.token({"payout:read"})

    async def known() -> bool:
        status = await served.call("payout", "GET", "/v1/status", operator)
        verifications = status["verifications"]
        return (
            status["entitlements"] >= 5
            and verifications.get("FAILED", 0) >= 1
            and verifications.get("VERIFIED", 0) >= 3
        )

    await wait_until(known, timeout=60, interval=0.2, message="payout knows the roll, verified")


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    data_dir = tmp_path_factory.mktemp("console")
    ports = {name: free_port() for name in ("intake", "payout", "reporting")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    sandbox = SandboxProcess(
        callback_base=urls["payout"], extra_args=["--webhook-delay-ms", "20"]
    ).start()
    saved = os.environ.get("INTAKE_POPULATION_REGISTRY_URL")
    os.environ["INTAKE_POPULATION_REGISTRY_URL"] = sandbox.url  # intake's revalidation asks it
    common: dict[str, Any] = {
        "environment": "development",
        "data_dir": data_dir,
        "host": "127.0.0.1",
    }
    intake_settings = IntakeSettings(port=ports["intake"], **common, **tokens.trust("intake"))
    payout_settings = PayoutSettings(
        port=ports["payout"],
        **common,
        **tokens.trust("payout"),
        bank_base_url=sandbox.url,
        scheduler_enabled=False,
        worker_idle_seconds=0.05,
        bank_read_timeout_seconds=2.0,
    )
    reporting_settings = ReportingSettings(
        port=ports["reporting"], **common, **tokens.trust("reporting")
    )
    # Reporting serves the console; intake and payout accept its origin (CORS).
    specs = with_console(
        [
            ServiceSpec("intake", intake_settings, intake.create_app, intake),
            ServiceSpec("payout", payout_settings, payout.create_app, payout),
            ServiceSpec("reporting", reporting_settings, reporting.create_app, reporting),
        ]
    )
    assert console_url(specs) == f"{urls['reporting']}/console"
    stack = Stack(specs=specs)
    admin = SandboxAdmin(sandbox.url)
    try:
        await stack.start()
        served = Served(
            stack,
            admin,
            f"{urls['reporting']}/console",
            urls["intake"],
            urls["payout"],
            {"period": period_of_date(vietnam_date())},
        )
        await seed(served)
        yield served
    finally:
        await stack.shutdown()
        await admin.aclose()
        sandbox.stop()
        if saved is None:
            os.environ.pop("INTAKE_POPULATION_REGISTRY_URL", None)
        else:
            os.environ["INTAKE_POPULATION_REGISTRY_URL"] = saved


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
    yield page
    await context.close()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


async def sign_in(page: Page, served: Served, username: str) -> None:
    await page.goto(served.console)
    await page.evaluate("sessionStorage.removeItem('console.token')")  # whoever was signed in
    await page.reload()
    await expect(page.get_by_test_id("sign-in-form")).to_be_visible()
    await page.get_by_test_id("username").fill(username)
    await page.get_by_test_id("password").fill(password_of(username))
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("who")).to_be_visible()


async def visible_tabs(page: Page) -> list[str]:
    tabs = []
    for queue in ("claims", "cycles", "accounts", "payments", "cash", "audit"):
        if await page.get_by_test_id(f"tab-{queue}").is_visible():
            tabs.append(queue)
    return tabs


async def open_queue(page: Page, queue: str) -> None:
    await page.get_by_test_id(f"tab-{queue}").click()
    await page.wait_for_selector(f'body[data-loaded="{queue}"]')


async def open_cycle(page: Page, period: str) -> None:
    await page.get_by_test_id("tab-cycles").click()
    await page.get_by_test_id("cycle-period").fill(period)
    await page.get_by_test_id("cycle-show").click()
    await page.wait_for_selector('body[data-loaded="cycles"]')


class TestSignIn:
    async def test_a_wrong_password_is_refused_and_the_page_says_so(self, served, page):
        await page.goto(served.console)
        await page.wait_for_selector('body[data-rendered="vi"]')
        assert await page.get_by_test_id("sign-in-submit").inner_text() == "Đăng nhập"
        await page.get_by_test_id("username").fill("bhxh-maker")
        await page.get_by_test_id("password").fill("not-the-password")
        await page.get_by_test_id("sign-in-submit").click()
        problem = page.get_by_test_id("problem")
        await expect(problem).to_be_visible()
        assert "password" in (await problem.inner_text())
        assert not await page.get_by_test_id("tabs").is_visible()
        await shot(page, "01-sign-in-refused")

    async def test_the_person_and_their_queues_follow_the_token_and_english_switches(
        self, served, page
    ):
        await sign_in(page, served, "bhxh-maker")
        assert await page.get_by_test_id("who-roles").inner_text() == "Cán bộ lập"
        assert "BHXH" in await page.get_by_test_id("who-agency").inner_text()
        # A maker: claims to read, cycles to prepare, accounts to fix, payments; no audit, no cash.
        assert await visible_tabs(page) == ["claims", "cycles", "accounts", "payments"]
        await page.get_by_test_id("lang-switch").click()
        await page.wait_for_selector('body[data-rendered="en"]')
        assert await page.get_by_test_id("tab-accounts").inner_text() == "Accounts to fix"
        assert await page.get_by_test_id("who-roles").inner_text() == "Maker"
        await page.get_by_test_id("lang-switch").click()
        await page.wait_for_selector('body[data-rendered="vi"]')
        await sign_in(page, served, "post-office")
        assert await visible_tabs(page) == ["cycles", "cash"] or await visible_tabs(page) == [
            "cash"
        ]
        assert page.errors == []  # type: ignore[attr-defined]


class TestTheWorkOfTheProvince:
    """One flow, in order: each step builds on the one before."""

    async def test_1_a_maker_fixes_an_account_that_failed_verification(self, served, page):
        await sign_in(page, served, "bhxh-maker")
        await open_queue(page, "claims")
        assert await page.get_by_test_id(f"claim-{served.ids['claim']}").is_visible()
        # A maker reads claims but does not decide them.
        assert await page.get_by_test_id("decide").count() == 0
        await open_queue(page, "accounts")
        row = page.get_by_test_id(f"method-{served.ids['unknown']}")
        await expect(row).to_be_visible()
        assert "FAILED" in await row.inner_text()
        await shot(page, "02-accounts-to-fix")
        await row.get_by_test_id("fix").click()
        await page.get_by_test_id("fix-bank").fill(VCB)
        await page.get_by_test_id("fix-account").fill(served.ids["new_account"])
        await page.get_by_test_id("fix-submit").click()
        await expect(page.get_by_test_id("notice")).to_be_visible()
        operator = tokens.token({"payout:read"})

        async def fixed() -> bool:
            method = await served.call(
                "payout",
                "GET",
                f"/v1/beneficiaries/{served.ids['unknown']}/payment-method",
                operator,
            )
            return method["status"] == "VERIFIED"

        await wait_until(fixed, timeout=30, interval=0.2, message="the new account is verified")
        await open_queue(page, "accounts")
        await expect(page.get_by_test_id(f"method-{served.ids['unknown']}")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]

    async def test_2_an_officer_prepares_the_cycle_and_cannot_approve_it(self, served, page):
        # bhxh-officer is maker and checker: only the four-eyes rule stands in the way.
        period = served.ids["period"]
        await sign_in(page, served, "bhxh-officer")
        await open_cycle(page, period)
        await expect(page.get_by_test_id("no-cycle")).to_be_visible()
        await page.get_by_test_id("cycle-prepare").click()
        # Preparing makes the cycle's installments before it answers: slower on a busy machine.
        await expect(page.get_by_test_id("notice")).to_be_visible(timeout=30_000)
        operator = tokens.token({"payout:read"})

        async def prepared() -> bool:
            cycle = await served.call("payout", "GET", f"/v1/cycles/{period}", operator)
            return cycle["approval_state"] not in ("CREATING", "AWAITING_REVALIDATION")

        await wait_until(prepared, timeout=60, interval=0.3, message="prepared and revalidated")
        # The post office will wait for its staff to record the cash item (no confirmation of
        # its own), so the handover below is the console's.
        [cash] = (
            await served.call(
                "payout",
                "GET",
                "/v1/installments",
                operator,
                params={"period": period, "beneficiary_id": served.ids["cash"]},
            )
        )["items"]
        assert cash["end_to_end_id"], cash
        await served.sandbox.set_cash_outcomes({cash["end_to_end_id"]: "PENDING"})
        await open_cycle(page, period)
        part = page.get_by_test_id("part-BHXH")
        await expect(part).to_have_attribute("data-state", "AWAITING_APPROVAL")
        digest = await page.get_by_test_id("digest-BHXH").inner_text()
        assert len(digest) >= 16
        await page.get_by_test_id("approve-BHXH").click()
        problem = page.get_by_test_id("problem")
        await expect(problem).to_be_visible()
        detail = await problem.inner_text()
        cycle = await served.call("payout", "GET", f"/v1/cycles/{period}", operator)
        assert cycle["agencies"]["BHXH"]["state"] == "AWAITING_APPROVAL"  # nothing released
        assert "a second officer must" in detail, "the page shows the server's problem"
        await shot(page, "03-own-cycle-refused")

    async def test_3_the_checker_decides_a_claim_with_the_rule_shown_and_approves(
        self, served, page
    ):
        period = served.ids["period"]
        await sign_in(page, served, "bhxh-checker")
        await open_queue(page, "claims")
        await page.get_by_test_id(f"claim-{served.ids['claim']}").get_by_test_id("decide").click()
        await expect(page.get_by_test_id("unemployment-facts")).to_be_visible()
        await page.get_by_test_id("average-salary").fill("8000000")
        await page.get_by_test_id("contribution-months").fill("50")
        await page.get_by_test_id("region").select_option("II")
        await page.get_by_test_id("contract-ended-on").fill("2026-10-31")
        await page.get_by_test_id("calculate").click()
        calculation = page.get_by_test_id("calculation")
        await expect(calculation).to_be_visible()
        # The rule's answer, as intake computes it: 60% of 8,000,000 for 4 months.
        assert await calculation.get_attribute("data-monthly") == "4800000"
        assert await calculation.get_attribute("data-months") == "4"
        assert "4.800.000" in await calculation.inner_text()
        assert await page.get_by_test_id("amount").input_value() == "4800000"
        await page.get_by_test_id("decision-number").fill("QD-TN-CONSOLE-1")
        await shot(page, "04-claim-with-calculation")
        await page.get_by_test_id("approve-claim").click()
        await expect(page.get_by_test_id("notice")).to_be_visible()
        await expect(page.get_by_test_id(f"claim-{served.ids['claim']}")).to_have_count(0)

        # The checker's queue names the period awaiting them: no period to type.
        await page.get_by_test_id("tab-cycles").click()
        waiting = page.get_by_test_id(f"awaiting-cycle-{period}")
        await expect(waiting).to_contain_text("BHXH")
        await waiting.click()
        await expect(page.get_by_test_id("cycle-period-shown")).to_contain_text(period)
        await expect(page.get_by_test_id("awaiting-BHXH")).to_be_visible()
        await shot(page, "05-cycle-to-approve")
        await page.get_by_test_id("approve-BHXH").click()
        await expect(page.get_by_test_id("notice")).to_be_visible()
        await expect(page.get_by_test_id("part-BHXH")).to_have_attribute("data-state", "APPROVED")
        trail = page.get_by_test_id("trail-BHXH")
        await expect(trail).to_contain_text("bhxh-checker")
        await expect(page.get_by_test_id("none-awaiting")).to_be_visible()
        await shot(page, "06-cycle-approved")
        assert page.errors == []  # type: ignore[attr-defined]

    async def test_4_the_post_office_records_a_cash_handover(self, served, page):
        period = served.ids["period"]
        await sign_in(page, served, "post-office")
        operator = tokens.token({"payout:read"})

        async def listed() -> str | None:
            lists = await served.call(
                "payout", "GET", "/v1/cash-lists", operator, params={"period": period}
            )
            items = [i for lst in lists["lists"] for i in lst["items"]]
            mine = [i for i in items if i["beneficiary_id"] == served.ids["cash"]]
            return mine[0]["end_to_end_id"] if mine else None

        e2e = await wait_until(listed, timeout=60, interval=0.3, message="the cash list is sent")
        await open_queue(page, "cash")
        row = page.get_by_test_id(f"cash-item-{e2e}")
        await expect(row).to_have_attribute("data-state", "SUBMITTED")
        await page.get_by_test_id(f"staff-{e2e}").fill("BD08707-02")
        await shot(page, "07-cash-list")
        await page.get_by_test_id(f"handover-{e2e}").click()
        await expect(page.get_by_test_id("notice")).to_be_visible()
        await expect(page.get_by_test_id(f"cash-item-{e2e}")).to_have_attribute(
            "data-state", "PAID_CASH"
        )
        assert "BD08707-02" in await page.get_by_test_id(f"cash-item-{e2e}").inner_text()
        await shot(page, "08-cash-handed-over")
        assert page.errors == []  # type: ignore[attr-defined]

    async def test_5_the_maker_reads_what_failed_is_held_or_odd_and_what_to_do_next(
        self, served, page
    ):
        period = served.ids["period"]
        operator = tokens.token({"payout:read"})

        async def installment(name: str) -> dict[str, Any]:
            [item] = (
                await served.call(
                    "payout",
                    "GET",
                    "/v1/installments",
                    operator,
                    params={"period": period, "beneficiary_id": served.ids[name]},
                )
            )["items"]
            return item

        async def final(name: str, state: str) -> dict[str, Any] | None:
            item = await installment(name)
            return item if item["state"] == state else None

        blocked = await wait_until(
            lambda: final("blocked", "FAILED"), timeout=60, interval=0.3, message="refused"
        )
        paid = await wait_until(
            lambda: final("paid", "SETTLED"), timeout=60, interval=0.3, message="settled"
        )
        held = await installment("deceased")
        assert held["state"] == "ON_HOLD" and held["hold_reason"] == "HOLDER_DECEASED", held
        # The bank then says the settled payment failed: a contradiction kept for a person.
        body = orjson.dumps(
            {
                "delivery_id": f"DLV-CONSOLE-{paid['id']}",
                "events": [
                    {
                        "event_id": f"EVT-CONSOLE-{paid['id']}",
                        "type": "transfer.failed",
                        "end_to_end_id": paid["end_to_end_id"],
                        "amount": paid["amount"],
                        "bank_reference": "FT-CONSOLE",
                        "reason_code": "AC04",
                        "occurred_at": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        )
        async with httpx.AsyncClient(base_url=served.payout) as client:
            answer = await client.post(
                f"/v1/webhooks/banks/{VCB}",
                content=body,
                headers=signed_headers(VCB, dev_secret(VCB), body),
            )
        assert answer.status_code == 200, answer.text
        assert (await installment("paid"))["state"] == "SETTLED"  # a final state stays

        await sign_in(page, served, "bhxh-maker")
        await open_queue(page, "payments")
        failed = page.get_by_test_id("failed-table").get_by_test_id(f"installment-{blocked['id']}")
        await expect(failed).to_contain_text("AC06")
        await expect(failed.get_by_test_id("next-step")).to_have_text(
            "Sửa tài khoản (ngân hàng, số, chủ tài khoản) hoặc chuyển sang nhận tiền mặt."
        )
        on_hold = page.get_by_test_id("held-table").get_by_test_id(f"installment-{held['id']}")
        await expect(on_hold).to_contain_text("HOLDER_DECEASED")
        await expect(on_hold.get_by_test_id("next-step")).to_contain_text("đề xuất dừng hưởng")
        anomalies = page.get_by_test_id("anomalies-table")
        await expect(anomalies).to_contain_text("CONFLICTING_OUTCOME")
        await expect(anomalies).to_contain_text(served.ids["paid"])
        await expect(anomalies.get_by_test_id("next-step")).to_contain_text("sao kê ngân hàng")
        # The paid and the cash-paid people have nothing to do, so they are not listed.
        await expect(page.get_by_test_id(f"installment-{paid['id']}")).to_have_count(0)
        await shot(page, "09-payments-to-look-at")
        await page.get_by_test_id("lang-switch").click()
        await page.wait_for_selector('body[data-rendered="en"]')
        await expect(on_hold.get_by_test_id("next-step")).to_contain_text("proposed stop")
        await page.get_by_test_id("lang-switch").click()
        assert page.errors == []  # type: ignore[attr-defined]

    async def test_6_the_administrator_searches_the_audit_trail(self, served, page):
        await sign_in(page, served, "administrator")
        await open_queue(page, "audit")
        await page.get_by_test_id("audit-actor").fill("bhxh-checker")
        await page.get_by_test_id("audit-search").click()
        await page.wait_for_selector('body[data-loaded="audit"]')
        table = page.get_by_test_id("audit-table")
        await expect(table).to_contain_text("bhxh-checker")
        await page.get_by_test_id("trail-period").fill(served.ids["period"])
        await page.get_by_test_id("trail-search").click()
        await page.wait_for_selector('body[data-loaded="trail"]')
        await expect(page.get_by_test_id("trail-table")).to_contain_text("APPROVE")
        await shot(page, "10-audit-trail")
        assert page.errors == []  # type: ignore[attr-defined]
