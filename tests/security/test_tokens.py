"""Bearer tokens on every service's protected endpoints: a missing, malformed, expired, forged
(another Ed25519 key, even one claiming the real key's id), wrongly issued or addressed,
unsigned (`alg=none`), symmetric (HS256 with any secret, the public key's bytes included:
algorithm confusion), tampered, exp-less, subject-less or future-dated token is a 401 problem
with a `WWW-Authenticate: Bearer` challenge; a valid token without the scope is a 403 problem;
neither changes anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import pytest

from shared.auth import AUDIENCE, ISSUER, SigningKey, issue_token
from tests.fuzz.servers import SCOPES, ServiceServer
from tests.intake import builders
from tests.support import tokens

PROBLEM = "application/problem+json"
# The HMAC tokens are made with short keys on purpose: they are refused whatever the key.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
ANOTHER_KEY = SigningKey.generate()
IMPOSTOR = SigningKey(ANOTHER_KEY.private_key, tokens.KEY.kid)  # another key, the real kid
PUBLIC_X = base64.urlsafe_b64decode(tokens.KEY.public_jwk()["x"] + "==")


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
        "kind": "client",
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _hmac(scopes: set[str], secret: bytes | str, algorithm: str = "HS256") -> str:
    """A token "signed" with HMAC under `secret` (made by hand: PyJWT rightly refuses some keys)."""
    key = secret.encode() if isinstance(secret, str) else secret
    header = {"alg": algorithm, "typ": "JWT", "kid": tokens.KEY.kid}
    signing_input = f"{_b64(header)}.{_b64(_claims(scopes))}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[algorithm]
    mac = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _tampered(scopes: set[str]) -> str:
    """A genuine token for no scope whose payload is swapped for one granting every scope."""
    header, _, signature = tokens.token(set(), sub="intruder").split(".")
    return f"{header}.{_b64(_claims(scopes))}.{signature}"


# name -> the Authorization header value, given every scope of the service.
BAD_CREDENTIALS: dict[str, Callable[[set[str]], str | None]] = {
    "missing": lambda scopes: None,
    "basic scheme": lambda scopes: "Basic " + base64.b64encode(b"admin:admin-dev-secret").decode(),
    "bearer without a token": lambda scopes: "Bearer",
    "not a jwt": lambda scopes: "Bearer not.a.jwt",
    "expired": lambda scopes: (
        "Bearer " + tokens.token(scopes, sub="intruder", ttl_seconds=60, now=time.time() - 3600)
    ),
    "another Ed25519 key": lambda scopes: (
        "Bearer " + tokens.token(scopes, sub="intruder", key=ANOTHER_KEY)
    ),
    "another key with the real kid": lambda scopes: (
        "Bearer " + tokens.token(scopes, sub="intruder", key=IMPOSTOR)
    ),
    "wrong issuer": lambda scopes: (
        "Bearer " + tokens.token(scopes, sub="intruder", issuer="someone-else")
    ),
    "wrong audience": lambda scopes: (
        "Bearer " + tokens.token(scopes, sub="intruder", audience="another-api")
    ),
    "alg none": lambda scopes: (
        f"Bearer {_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(scopes))}."
    ),
    "HS256 with any secret": lambda scopes: "Bearer " + _hmac(scopes, "any-secret-whatsoever"),
    "HS256 with the public key": lambda scopes: "Bearer " + _hmac(scopes, PUBLIC_X),
    "HS256 with the public JWK": lambda scopes: (
        "Bearer " + _hmac(scopes, json.dumps(tokens.KEY.public_jwk()))
    ),
    "HS512": lambda scopes: "Bearer " + _hmac(scopes, "any-secret-whatsoever", "HS512"),
    "tampered payload": lambda scopes: "Bearer " + _tampered(scopes),
    "no expiry": lambda scopes: "Bearer " + tokens.KEY.sign(_claims(scopes, exp=None)),
    "no subject": lambda scopes: "Bearer " + tokens.KEY.sign(_claims(scopes, sub=None)),
    "issued in the future": lambda scopes: (
        "Bearer " + tokens.token(scopes, sub="intruder", now=time.time() + 3600, ttl_seconds=7200)
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
        ("POST", "/v1/cycles", lambda: {"period": "2031-04"}, "cycles:prepare"),
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
            authorization = credentials(set(SCOPES[service]) | {scope})
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
        others = (set(SCOPES[service]) | {scope}) - {scope}
        response = await _send(
            server, method, path, payload, "Bearer " + tokens.token(others, sub="intruder")
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
            "Bearer " + tokens.token(set(SCOPES[service]) | {scope}, sub="operator"),
        )
        assert response.status_code < 300 or response.status_code == 404, response.text


class TestPeople:
    async def test_a_person_whose_role_lacks_its_agency_is_refused(self, servers):
        # A checker's token without an agency would read every agency's records: refused.
        unbound = tokens.token(sub="someone", kind="person", roles={"checker"})
        for service, path in (("intake", "/v1/claims"), ("payout", "/v1/status")):
            response = await _send(servers[service], "GET", path, None, f"Bearer {unbound}")
            assert response.status_code == 403, (service, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)

    async def test_a_person_acts_with_the_scopes_of_their_roles_only(self, servers):
        # The scope claim of a person's token is not what counts: their roles are.
        person = tokens.KEY.sign(
            _claims(
                {"payout:operate", "audit:read"},
                kind="person",
                roles=["leader"],
                sub="a-leader",
            )
        )
        audit = await _send(servers["intake"], "GET", "/v1/audit", None, f"Bearer {person}")
        assert audit.status_code == 403, audit.text
        status = await _send(servers["payout"], "GET", "/v1/status", None, f"Bearer {person}")
        assert status.status_code == 200, status.text


def test_issue_token_signs_only_with_a_private_key():
    with pytest.raises(TypeError):
        issue_token("a-shared-secret", "someone", {"payout:read"})  # type: ignore[arg-type]
