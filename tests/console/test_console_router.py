"""The console's routes (its page, scripts, styles and configuration), the services' opt-in CORS
for the console's origin, and intake's answer of what the unemployment rule grants, which the
console shows before a checker decides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.console import ConsoleConfig, console_router
from services.intake.settings import IntakeSettings
from services.payout.bootstrap import create_app as create_payout
from services.payout.settings import PayoutSettings
from tests.intake.conftest import Intake, running_intake
from tests.support import tokens

CONSOLE = "http://console.example:8003"
CONFIG = ConsoleConfig(
    "http://intake.example:8001", "http://payout.example:8002/", "http://console.example:8003"
)


def console_app(config: ConsoleConfig = CONFIG) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(console_router(config))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)


class TestTheConsolesRoutes:
    async def test_the_page_its_files_and_its_configuration(self):
        async with console_app() as http:
            page = await http.get("/console")
            script = await http.get("/console/static/console.js")
            style = await http.get("/console/static/console.css")
            config = await http.get("/console/config.json")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<html lang="vi">' in page.text and "/console/static/console.js" in page.text
        policy = page.headers["content-security-policy"]
        # The page may talk to itself and the three services, and run only its own script.
        assert "connect-src 'self' http://intake.example:8001 http://payout.example:8002" in policy
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert script.headers["content-type"].startswith("text/javascript")
        assert style.headers["content-type"].startswith("text/css")
        assert config.json() == {
            "intake": "http://intake.example:8001",
            "payout": "http://payout.example:8002",
            "reporting": "http://console.example:8003",
            "issuer": "vn-benefits",
            "sign_in": {
                "kind": "password",
                "token_endpoint": "http://intake.example:8001/oauth/token",
            },
        }

    async def test_only_the_pages_files_are_served(self):
        async with console_app() as http:
            for name in ("index.html", "router.py", "__init__.py", "missing.js"):
                answer = await http.get(f"/console/static/{name}")
                assert answer.status_code == 404, name
                assert answer.headers["content-type"].startswith("application/problem+json")
            assert (await http.get("/console/static/..%2Frouter.py")).status_code == 404

    async def test_an_openid_connect_issuer_is_the_configured_alternative(self):
        config = ConsoleConfig(
            CONFIG.intake_url,
            CONFIG.payout_url,
            CONFIG.reporting_url,
            oidc_issuer="https://id.example.vn/realms/benefits",
            oidc_client_id="console",
        )
        async with console_app(config) as http:
            document = (await http.get("/console/config.json")).json()
            policy = (await http.get("/console")).headers["content-security-policy"]
        assert document["issuer"] == "https://id.example.vn/realms/benefits"
        assert document["sign_in"] == {
            "kind": "oidc",
            "issuer": "https://id.example.vn/realms/benefits",
            "client_id": "console",
            "scope": "openid profile",
        }
        assert "https://id.example.vn" in policy


def payout_app(tmp_path: Path, origins: list[str]) -> httpx.AsyncClient:
    settings = PayoutSettings(
        environment="development",
        data_dir=tmp_path,
        console_origins=origins,
        **tokens.trust("payout"),
    )
    app = create_payout(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payout")


PREFLIGHT = {
    "Origin": CONSOLE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


class TestCors:
    async def test_the_consoles_origin_may_call_with_a_bearer_token_and_no_cookies(self, tmp_path):
        async with payout_app(tmp_path, [CONSOLE]) as http:
            answer = await http.options("/v1/cycles/2031-01/approvals", headers=PREFLIGHT)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == CONSOLE
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "access-control-allow-credentials" not in answer.headers

    async def test_another_origin_is_refused(self, tmp_path):
        async with payout_app(tmp_path, [CONSOLE]) as http:
            answer = await http.options(
                "/v1/cycles", headers={**PREFLIGHT, "Origin": "http://evil.example"}
            )
        assert answer.status_code == 400
        assert "access-control-allow-origin" not in answer.headers

    async def test_without_console_origins_there_is_no_cors_at_all(self, tmp_path):
        async with payout_app(tmp_path, []) as http:
            answer = await http.options("/v1/cycles", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in answer.headers
        assert answer.status_code == 405


@pytest.fixture
async def intake(tmp_path) -> AsyncIterator[Intake]:
    settings = IntakeSettings(
        environment="development", data_dir=tmp_path, **tokens.trust("intake")
    )
    async for running in running_intake(settings):
        yield running


RULE = {
    "average_salary": 30_000_000,
    "contribution_months": 100,
    "region": "I",
    "contract_ended_on": "2024-08-15",
}


class TestTheUnemploymentRuleAsked:
    async def test_it_answers_the_amount_months_and_cap_of_the_rule(self, intake):
        answer = await intake.get("/v1/unemployment/benefit", "bhxh", params=RULE)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # 60% of 30,000,000 = 18,000,000, over region I's cap from July 2024 (5 x 4,960,000).
        assert body["cap"] == 24_800_000 and body["capped"] is False
        assert body["monthly_amount"] == 18_000_000
        assert body["months"] == 8  # 3 + (100 - 36) // 12, at most 12
        assert body["total"] == 18_000_000 * 8
        assert body["basis"]["ceiling"] == 4_960_000
        state = await intake.get(
            "/v1/unemployment/benefit",
            "bhxh",
            params={**RULE, "average_salary": 50_000_000, "salary_regime": "STATE"},
        )
        assert state.json()["cap"] == 5 * 2_340_000 and state.json()["capped"] is True
        assert state.json()["monthly_amount"] == 5 * 2_340_000

    async def test_facts_the_rule_refuses_are_problems(self, intake):
        short = await intake.get(
            "/v1/unemployment/benefit", "bhxh", params={**RULE, "contribution_months": 11}
        )
        early = await intake.get(
            "/v1/unemployment/benefit", "bhxh", params={**RULE, "contract_ended_on": "2001-01-01"}
        )
        region = await intake.get(
            "/v1/unemployment/benefit", "bhxh", params={**RULE, "region": "V"}
        )
        salary = await intake.get(
            "/v1/unemployment/benefit", "bhxh", params={**RULE, "average_salary": 0}
        )
        for answer in (short, early, region, salary):
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert short.json()["errors"][0]["pointer"] == "/contribution_months"
        assert early.json()["errors"][0]["pointer"] == "/contract_ended_on"

    async def test_it_needs_claims_read(self, intake):
        anonymous = await intake.http.get("/v1/unemployment/benefit", params=RULE)
        assert anonymous.status_code == 401
        token = tokens.token({"payout:read"})
        other = await intake.http.get(
            "/v1/unemployment/benefit", params=RULE, headers={"Authorization": f"Bearer {token}"}
        )
        assert other.status_code == 403
