"""Bearer tokens on every service's protected endpoints: a missing, malformed, expired, forged,
wrongly issued or addressed, unsigned (`alg=none`), re-signed with another algorithm, tampered or
exp-less token is a 401 problem with a `WWW-Authenticate: Bearer` challenge; a valid token
without the scope is a 403 problem; neither changes anything."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import jwt
import pytest

from shared.auth import AUDIENCE, ISSUER, issue_token
from tests.fuzz.servers import JWT_SECRET, SCOPES, ServiceServer
from tests.intake import builders

PROBLEM = "application/problem+json"
# The HS512 token is signed with the services' own (HS256-sized) key on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(scopes: set[str], **override) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "intruder",
        "scope": " ".join(sorted(scopes)),
        "iat": now,
        "exp": now + 600,
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _tampered(scopes: set[str]) -> str:
    """A genuine token for no scope whose payload is swapped for one granting every scope."""
    header, _, signature = issue_token(JWT_SECRET, "intruder", set()).split(".")
    return f"{header}.{_b64(_claims(scopes))}.{signature}"


# name -> the Authorization header value, given every scope of the service.
BAD_CREDENTIALS: dict[str, Callable[[set[str]], str | None]] = {
    "missing": lambda scopes: None,
    "basic scheme": lambda scopes: "Basic " + base64.b64encode(b"admin:admin-dev-secret").decode(),
    "bearer without a token": lambda scopes: "Bearer",
    "not a jwt": lambda scopes: "Bearer not.a.jwt",
    "expired": lambda scopes: (
        "Bearer "
        + issue_token(JWT_SECRET, "intruder", scopes, ttl_seconds=60, now=time.time() - 3600)
    ),
    "forged signature": lambda scopes: (
        "Bearer " + issue_token("another-secret-long-enough-for-hs256-keys", "intruder", scopes)
    ),
    "wrong issuer": lambda scopes: (
        "Bearer " + jwt.encode(_claims(scopes, iss="someone-else"), JWT_SECRET, algorithm="HS256")
    ),
    "wrong audience": lambda scopes: (
        "Bearer " + jwt.encode(_claims(scopes, aud="another-api"), JWT_SECRET, algorithm="HS256")
    ),
    "alg none": lambda scopes: (
        f"Bearer {_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(scopes))}."
    ),
    "alg HS512": lambda scopes: (
        "Bearer " + jwt.encode(_claims(scopes), JWT_SECRET, algorithm="HS512")
    ),
    "tampered payload": lambda scopes: "Bearer " + _tampered(scopes),
    "no expiry": lambda scopes: (
        "Bearer " + jwt.encode(_claims(scopes, exp=None), JWT_SECRET, algorithm="HS256")
    ),
}


def _target() -> dict:
    return {
        "code": f"t-{uuid.uuid4().hex[:8]}",
        "title_vi": "Mục tiêu",
        "title_en": "Target",
        "area_type": "URBAN",
        "area_level": "province",
        "schemes": ["PENSION"],
        "target_percent": 25,
        "deadline": "2025-12-31",
    }


# service -> (method, path, body factory, the scope it needs)
PROTECTED: dict[str, list[tuple[str, str, Callable[[], object] | None, str]]] = {
    "intake": [
        ("GET", "/v1/claims", None, "claims:read"),
        ("POST", "/v1/claims", builders.claim, "claims:write"),
        ("GET", "/v1/audit", None, "audit:read"),
        ("GET", "/v1/beneficiaries/BEN-1", None, "beneficiaries:read"),
        ("POST", "/v1/roll/uploads", lambda: {"rows": [builders.roll_row()]}, "roll:write"),
    ],
    "payout": [
        ("GET", "/v1/status", None, "payout:read"),
        ("POST", "/v1/cycles", lambda: {"period": "2031-04"}, "payout:operate"),
        ("GET", "/v1/installments", None, "payout:read"),
        ("GET", "/v1/ledger?period=2031-04", None, "payout:read"),
    ],
    "reporting": [
        ("GET", "/v1/kpis", None, "reports:read"),
        ("GET", "/v1/targets", None, "reports:read"),
        ("POST", "/v1/targets", _target, "reports:write"),
    ],
}
CASES = [(service, *endpoint) for service, endpoints in PROTECTED.items() for endpoint in endpoints]


async def _send(
    server: ServiceServer, method: str, path: str, body: object, authorization: str | None
):
    headers = {} if authorization is None else {"Authorization": authorization}
    async with server.client() as client:
        client.headers.pop("Authorization")
        return await client.request(method, path, json=body, headers=headers)


async def _nothing_was_created(server: ServiceServer, path: str, body: object) -> None:
    async with server.client() as client:
        if server.service == "intake":
            audit = await client.get("/v1/audit", params={"client_id": "intruder"})
            assert audit.status_code == 200 and audit.json()["items"] == [], audit.text
            if path == "/v1/claims":
                found = await client.get(
                    "/v1/claims", params={"portal_dossier_id": body["portal_dossier_id"]}
                )
                assert found.status_code == 200 and found.json()["items"] == [], found.text
        elif path == "/v1/cycles":
            assert (await client.get("/v1/cycles/2031-04")).status_code == 404
        elif path == "/v1/targets":
            codes = [t["code"] for t in (await client.get("/v1/targets")).json()]
            assert body["code"] not in codes


class TestUnauthenticated:
    @pytest.mark.parametrize(("service", "method", "path", "body", "scope"), CASES)
    async def test_bad_credentials_are_refused_with_a_challenge(
        self, servers, service, method, path, body, scope
    ):
        server = servers[service]
        payload = body() if body else None
        for name, credentials in BAD_CREDENTIALS.items():
            authorization = credentials(set(SCOPES[service]))
            response = await _send(server, method, path, payload, authorization)
            assert response.status_code == 401, (name, response.status_code, response.text)
            assert response.headers["content-type"].startswith(PROBLEM), name
            assert response.headers["www-authenticate"].startswith("Bearer"), name
            problem = response.json()
            assert problem["status"] == 401 and problem["title"] and problem["type"], name
            if authorization and len(authorization) > 12:
                assert authorization.split(" ", 1)[-1] not in response.text, name
        if payload is not None:
            await _nothing_was_created(server, path, payload)


class TestWrongScope:
    @pytest.mark.parametrize(("service", "method", "path", "body", "scope"), CASES)
    async def test_a_valid_token_without_the_scope_is_forbidden(
        self, servers, service, method, path, body, scope
    ):
        server = servers[service]
        payload = body() if body else None
        others = set(SCOPES[service]) - {scope}
        response = await _send(
            server, method, path, payload, "Bearer " + issue_token(JWT_SECRET, "intruder", others)
        )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["status"] == 403 and scope in response.json()["detail"]
        if payload is not None:
            await _nothing_was_created(server, path, payload)

    @pytest.mark.parametrize(("service", "method", "path", "body", "scope"), CASES)
    async def test_the_same_request_with_the_scope_is_accepted(
        self, servers, service, method, path, body, scope
    ):
        # The control: what the refusals above refuse is the token, not the request.
        server = servers[service]
        response = await _send(
            server,
            method,
            path,
            body() if body else None,
            "Bearer " + issue_token(JWT_SECRET, "operator", set(SCOPES[service])),
        )
        assert response.status_code < 300 or response.status_code == 404, response.text
