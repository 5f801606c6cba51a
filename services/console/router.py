"""`console_router(...)`: the console's page at `/console`, its scripts and styles at
`/console/static/...`, and `/console/config.json`, which tells the page where the services are
and how people sign in (intake's built-in issuer, or an OpenID Connect issuer with the
authorization code flow and PKCE)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

from shared.web import problem_response

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The files the page is made of: nothing else is served from the directory.
STATIC_FILES = {"console.js": "text/javascript", "console.css": "text/css"}


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """Where the page finds the services (as the browser reaches them) and who signs people in.
    `oidc_issuer` unset: people sign in with a username and password at intake's
    `POST /oauth/token` (grant_type=password). Set: the page sends them to that issuer's
    authorization endpoint (code flow with PKCE, public client `oidc_client_id`)."""

    intake_url: str
    payout_url: str
    reporting_url: str
    issuer: str = "vn-benefits"
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_scope: str = "openid profile"

    def document(self) -> dict[str, Any]:
        sign_in: dict[str, Any] = {"kind": "password", "token_endpoint": self._token_endpoint()}
        if self.oidc_issuer:
            sign_in = {
                "kind": "oidc",
                "issuer": self.oidc_issuer,
                "client_id": self.oidc_client_id,
                "scope": self.oidc_scope,
            }
        return {
            "intake": self.intake_url.rstrip("/"),
            "payout": self.payout_url.rstrip("/"),
            "reporting": self.reporting_url.rstrip("/"),
            "issuer": self.oidc_issuer or self.issuer,
            "sign_in": sign_in,
        }

    def _token_endpoint(self) -> str:
        return self.intake_url.rstrip("/") + "/oauth/token"

    def origins(self) -> list[str]:
        """The origins the page talks to (its Content-Security-Policy's connect-src)."""
        urls = [self.intake_url, self.payout_url, self.reporting_url]
        if self.oidc_issuer:
            urls.append(self.oidc_issuer)
        found = []
        for url in urls:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in found:
                found.append(origin)
        return found


def _headers(config: ConsoleConfig) -> dict[str, str]:
    connect = " ".join(["'self'", *config.origins()])
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; connect-src {connect}; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def console_router(config: ConsoleConfig) -> APIRouter:
    """The console's routes, to include in a service's app (reporting's, by default)."""
    router = APIRouter(tags=["console"], include_in_schema=False)
    headers = _headers(config)
    document = config.document()

    @router.get("/console")
    async def console_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)

    @router.get("/console/config.json")
    async def console_config() -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": "no-cache"})

    @router.get("/console/static/{name}")
    async def console_static(name: str) -> Response:
        media_type = STATIC_FILES.get(name)
        if media_type is None:  # answered here: the router works in any app
            return problem_response(404, "Not Found", "no such file")
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=headers)

    return router
