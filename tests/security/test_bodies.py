"""Hostile request bodies on every service's write endpoints (PostgreSQL and Kafka): malformed
JSON, wrong content types, oversized and deeply nested bodies are 4xx problems that change
nothing; SQL, HTML, path-traversal and other injection strings (and NUL characters) in every
string field of a valid body are never a server error, and what is taken is stored as text.
Injection strings and NUL characters in query strings and paths are refused the same way."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests.fuzz.servers import ServiceServer
from tests.intake import builders

PROBLEM = "application/problem+json"
INJECTIONS = [
    "' OR '1'='1'; DROP TABLE claims;--",
    "\"; DELETE FROM installments WHERE ''='",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "${jndi:ldap://127.0.0.1/a}",
    "%00%27%22",
    "NUL\u0000inside",
    "\u202egnp.exe",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃ " * 3,
    "A" * 10_000,
]
NESTED = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
MALFORMED = {
    "truncated": b'{"period": ',
    "not UTF-8": b"\xff\xfe\xfa",
    "null": b"null",
    "an array": b"[]",
    "a string": b'"x"',
    "a huge exponent": b'{"x": 1e999999}',
    "deeply nested": NESTED,
    "nested past the parser's depth": b"[" * 5000 + b"]" * 5000,
}
OVERSIZED = b'{"x":"' + b"A" * (20 * 1024 * 1024) + b'"}'


def _target_body() -> dict[str, Any]:
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


def _string_paths(document: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _string_paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _string_paths(value, (*path, index))
    elif isinstance(document, str):
        yield path


def _replaced(document: Any, path: tuple, value: str) -> Any:
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


async def _fingerprint(server: ServiceServer) -> tuple:
    """What a refused request must leave as it was."""
    async with server.client() as client:
        if server.service == "intake":
            claims = (await client.get("/v1/claims", params={"limit": 500})).json()["items"]
            audit = (await client.get("/v1/audit", params={"limit": 1000})).json()["items"]
            return len(claims), len(audit)
        if server.service == "payout":
            return (
                (await client.get("/v1/status")).json(),
                (await client.get("/v1/installments")).json()["items"],
                (await client.get("/v1/reconciliations")).json()["items"],
            )
        return tuple(sorted(t["id"] for t in (await client.get("/v1/targets")).json()))


async def _endpoints(
    servers: dict[str, ServiceServer],
) -> list[tuple[ServiceServer, str, str, Callable[[], Any]]]:
    """(server, method, path, valid body factory) of every JSON write endpoint, with the rows the
    paths name created first."""
    intake, reporting = servers["intake"], servers["reporting"]
    async with intake.client() as client:
        filed = await client.post("/v1/claims", json=builders.claim())
        assert filed.status_code == 201, filed.text
        claim = filed.json()
        decided = await client.post("/v1/claims", json=builders.claim())
        other = decided.json()
        approved = await client.post(
            f"/v1/claims/{other['claim_id']}/decision", json=builders.unemployment_approval()
        )
        assert approved.status_code == 200, approved.text
        entitlement = (await client.get(f"/v1/claims/{other['claim_id']}")).json()["entitlement_id"]
    async with reporting.client() as client:
        target = (await client.post("/v1/targets", json=_target_body())).json()
    return [
        (intake, "POST", "/v1/claims", builders.claim),
        (
            intake,
            "POST",
            f"/v1/claims/{claim['claim_id']}/decision",
            builders.unemployment_approval,
        ),
        (
            intake,
            "POST",
            f"/v1/entitlements/{entitlement}/stop",
            lambda: {"reason": "OTHER", "effective_period": "2023-07"},
        ),
        (intake, "POST", "/v1/beneficiaries/lookup", lambda: {"national_id": "026090001234"}),
        (
            intake,
            "PUT",
            f"/v1/beneficiaries/{claim['beneficiary_id']}/payment-method",
            lambda: {"method": "OWN_ACCOUNT", "bank_bin": "970436", "account_number": "0123456789"},
        ),
        (intake, "POST", "/v1/roll/uploads", lambda: {"rows": [builders.roll_row()]}),
        (
            intake,
            "POST",
            "/v1/payment-methods/uploads",
            lambda: {
                "rows": [
                    {
                        "national_id": "026090001234",
                        "payment_method": "OWN_ACCOUNT",
                        "bank_bin": "970436",
                        "account_number": "0123456789",
                    }
                ]
            },
        ),
        (servers["payout"], "POST", "/v1/cycles", lambda: {"period": "2031-04"}),
        (
            servers["payout"],
            "POST",
            "/v1/reconciliations",
            lambda: {"counterparty": "970436", "date": "2031-04-06"},
        ),
        (reporting, "POST", "/v1/targets", _target_body),
        (reporting, "PUT", f"/v1/targets/{target['id']}", _target_body),
    ]


def _is_problem(response) -> bool:
    return response.headers.get("content-type", "").startswith(PROBLEM)


class TestMalformedBodies:
    async def test_malformed_mistyped_oversized_and_nested_bodies_are_refused_and_change_nothing(
        self, servers
    ):
        endpoints = await _endpoints(servers)
        before = {name: await _fingerprint(server) for name, server in servers.items()}
        for server, method, path, body in endpoints:
            valid = orjson.dumps(body())
            attempts = {**MALFORMED, "oversized": OVERSIZED}
            async with server.client() as client:
                for name, content in attempts.items():
                    response = await client.request(
                        method, path, content=content, headers={"content-type": "application/json"}
                    )
                    assert 400 <= response.status_code < 500, (
                        path,
                        name,
                        response.status_code,
                        response.text[:300],
                    )
                    assert _is_problem(response), (path, name, response.text[:300])
                for content_type in (
                    "text/plain",
                    "application/xml",
                    "multipart/form-data",
                    "application/x-www-form-urlencoded",
                    "image/png",
                ):
                    response = await client.request(
                        method, path, content=valid, headers={"content-type": content_type}
                    )
                    assert 400 <= response.status_code < 500, (
                        path,
                        content_type,
                        response.status_code,
                        response.text[:300],
                    )
                    assert _is_problem(response), (path, content_type, response.text[:300])
        assert {name: await _fingerprint(server) for name, server in servers.items()} == before


class TestInjection:
    async def test_injection_strings_in_every_string_field_are_never_a_server_error(self, servers):
        failures = []
        for server, method, path, body in await _endpoints(servers):
            document = body()
            async with server.client() as client:
                for field_path in _string_paths(document):
                    for text in INJECTIONS:
                        attempt = _replaced(body(), field_path, text)
                        response = await client.request(method, path, json=attempt)
                        where = (
                            server.service,
                            method,
                            path,
                            "/".join(map(str, field_path)),
                            text[:40],
                        )
                        if response.status_code >= 500 or (
                            response.status_code >= 400 and not _is_problem(response)
                        ):
                            failures.append((*where, response.status_code, response.text[:200]))
                        assert b"root:" not in response.content, where
        for name, check in servers.items():  # every service still answers its reads
            async with check.client() as client:
                listing = {
                    "intake": "/v1/claims",
                    "payout": "/v1/installments",
                    "reporting": "/v1/targets",
                }[name]
                assert (await client.get(listing)).status_code == 200, name
        assert not failures, "\n".join(map(repr, failures))

    async def test_what_is_taken_is_stored_as_text(self, servers):
        async with servers["reporting"].client() as client:
            for text in INJECTIONS[:7]:
                created = await client.post(
                    "/v1/targets", json={**_target_body(), "title_en": text}
                )
                assert created.status_code == 201, created.text
                stored = (await client.get(f"/v1/targets/{created.json()['id']}")).json()
                assert stored["title_en"] == text

    @pytest.mark.parametrize(
        ("service", "path"),
        [
            ("intake", "/v1/claims"),
            ("intake", "/v1/audit"),
            ("payout", "/v1/installments"),
            ("payout", "/v1/batches"),
            ("payout", "/v1/reconciliations"),
            ("reporting", "/v1/kpis"),
        ],
    )
    async def test_injection_and_nul_in_query_strings_are_never_a_server_error(
        self, servers, service, path
    ):
        server = servers[service]
        cursors = [
            base64.urlsafe_b64encode(v.encode()).decode().rstrip("=")
            for v in ("²³", "9" * 40, '["²"]', '["' + "9" * 40 + '"]', "-1", "\u0000")
        ]
        async with server.client() as client:
            spec = (await client.get("/openapi.json")).json()
            names = [
                p["name"]
                for p in spec["paths"][path]["get"].get("parameters", [])
                if p["in"] == "query"
            ]
            failures = []
            for name in names:
                for text in [*INJECTIONS, *cursors]:
                    response = await client.get(path, params={name: text})
                    if response.status_code >= 500 or (
                        response.status_code >= 400 and not _is_problem(response)
                    ):
                        failures.append(
                            (path, name, text[:40], response.status_code, response.text[:200])
                        )
        assert not failures, "\n".join(map(repr, failures))

    @pytest.mark.parametrize(
        ("service", "template"),
        [
            ("intake", "/v1/claims/{}"),
            ("intake", "/v1/beneficiaries/{}"),
            ("intake", "/v1/roll/uploads/{}"),
            ("payout", "/v1/batches/{}"),
            ("payout", "/v1/cycles/{}"),
            ("payout", "/v1/installments/{}"),
            ("payout", "/v1/beneficiaries/{}/payment-method"),
            ("reporting", "/v1/targets/{}"),
        ],
    )
    async def test_injection_and_nul_in_paths_are_never_a_server_error(
        self, servers, service, template
    ):
        server = servers[service]
        async with server.client() as client:
            for text in [*INJECTIONS[:8], "%00", "..%2F..%2F..%2Fetc%2Fpasswd", "9" * 40, "-1"]:
                response = await client.get(
                    template.format(text.replace("/", "%2F").replace("?", "%3F"))
                )
                assert response.status_code < 500, (
                    template,
                    text[:40],
                    response.status_code,
                    response.text,
                )
                assert b"root:" not in response.content

    async def test_static_files_do_not_leave_their_folder(self, servers):
        async with servers["reporting"].client() as client:
            for path in (
                "/static/../../../../etc/passwd",
                "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                "/static/..%2f..%2f..%2fsettings.py",
                "/static/%00",
            ):
                response = await client.get(path)
                assert 400 <= response.status_code < 500, (path, response.status_code)
                assert b"root:" not in response.content and b"class " not in response.content
