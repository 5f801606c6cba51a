"""Sign-in through a configured OpenID Connect issuer instead of intake's built-in one: the page
sends the person to the issuer's authorization endpoint with a PKCE challenge (S256) and a
state, takes the code back on /console, exchanges it with the verifier, and shows who the
token says signed in. The issuer here is a small stand-in (discovery, authorize, token) that
checks the PKCE verifier the way a real one (Keycloak) does."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from playwright.async_api import Browser, async_playwright, expect
from starlette.middleware.cors import CORSMiddleware

from services.console import ConsoleConfig, console_router
from tests.support import tokens
from tests.support.sandbox import free_port

from .test_console_browser import CHROMIUM, CHROMIUM_ARGS, shot


@dataclass
class Issuer:
    url: str
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    exchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def issuer_app(issuer: Issuer, console_origin: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[console_origin],
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer.url,
                "authorization_endpoint": f"{issuer.url}/authorize",
                "token_endpoint": f"{issuer.url}/token",
                "jwks_uri": f"{issuer.url}/jwks",
                "code_challenge_methods_supported": ["S256"],
            }
        )

    @app.get("/authorize")
    async def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        assert q["response_type"] == "code" and q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        issuer.codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "client_id": q["client_id"],
        }
        # The person signs in at the issuer; here they are signed in already.
        return RedirectResponse(
            f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302
        )

    @app.post("/token")
    async def token(
        grant_type: str = Form(),
        code: str = Form(),
        redirect_uri: str = Form(),
        client_id: str = Form(),
        code_verifier: str = Form(),
    ) -> JSONResponse:
        asked = issuer.codes.pop(code, None)
        digest = hashlib.sha256(code_verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            grant_type != "authorization_code"
            or asked is None
            or asked["challenge"] != challenge
            or asked["redirect_uri"] != redirect_uri
            or asked["client_id"] != client_id
        ):
            issuer.refused.append(code)
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        issuer.exchanged.append(code)
        access = tokens.token(
            sub="kc-checker",
            kind="person",
            roles={"checker"},
            agency="DOLISA",
            name="Trần Văn Kiểm",
            issuer=issuer.url,
        )
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 300})

    return app


async def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture
async def running() -> AsyncIterator[tuple[str, Issuer]]:
    console_port, issuer_port = free_port(), free_port()
    console_origin = f"http://127.0.0.1:{console_port}"
    issuer = Issuer(f"http://127.0.0.1:{issuer_port}/realms/benefits")
    nowhere = f"http://127.0.0.1:{free_port()}"  # no service answers: only the sign-in matters
    console = FastAPI()
    console.include_router(
        console_router(
            ConsoleConfig(
                nowhere, nowhere, console_origin, oidc_issuer=issuer.url, oidc_client_id="console"
            )
        )
    )
    realm = FastAPI()
    realm.mount("/realms/benefits", issuer_app(issuer, console_origin))
    servers = [await serve(console, console_port), await serve(realm, issuer_port)]
    try:
        yield f"{console_origin}/console", issuer
    finally:
        for server, task in servers:
            server.should_exit = True
            await task


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "scripts/browser.sh installs Debian's chromium"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def test_sign_in_through_the_configured_issuer_with_pkce(running, browser):
    url, issuer = running
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, locale="vi-VN")
    page = await context.new_page()
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(url)
        await expect(page.get_by_test_id("oidc-sign-in")).to_be_visible()
        assert not await page.get_by_test_id("sign-in-form").is_visible()  # no password here
        await page.get_by_test_id("oidc-sign-in").click()
        await expect(page.get_by_test_id("who")).to_be_visible()
        assert await page.get_by_test_id("who-name").inner_text() == "Trần Văn Kiểm"
        assert await page.get_by_test_id("who-roles").inner_text() == "Cán bộ phê duyệt"
        assert "DOLISA" in await page.get_by_test_id("who-agency").inner_text()
        assert len(issuer.exchanged) == 1 and issuer.refused == []
        assert page.url == url  # the code and state are taken off the address
        await shot(page, "11-signed-in-through-the-issuer")
        # A code handed back with another state (not the page's) is not exchanged.
        await page.evaluate("sessionStorage.clear()")
        await page.goto(f"{url}?code=forged&state=forged")
        await expect(page.get_by_test_id("problem")).to_be_visible()
        assert not await page.get_by_test_id("who").is_visible()
        assert issuer.refused == [] and len(issuer.exchanged) == 1
        assert errors == []
    finally:
        await context.close()
