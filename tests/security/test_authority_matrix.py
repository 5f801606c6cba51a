"""The authority matrix of `shared.authority`, proved against the three services: every route of
every app (enumerated from the FastAPI apps, so a route without a row fails, and so does a row
without a route) is called by every role, and the answer must be the table's: allowed (neither
401 nor 403, never a 5xx), 401, 403, or 404 for a lookup the ownership rule hides.

The services run on fresh PostgreSQL databases and Kafka with topics of their own; intake and
payout in development (so the development clients exist and their real tokens are used),
reporting in production. The records acted on belong to BHXH: a pensioner of its roll, that
pensioner's entitlement and uploads, and a pension claim the portal filed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import gettempdir
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import _IncludedRouter  # the routes of an included router (FastAPI >= 0.16x)
from starlette.routing import Mount

from services.intake.service_layer.clients import DEV_CLIENTS
from services.intake.service_layer.clients import SCOPES as CLIENT_SCOPES
from services.intake.service_layer.users import DEMO_USERS
from shared.auth import AGENCY_SCOPE_PREFIX
from shared.authority import PEOPLE, ROLES, RULE_OF, RULES, Owner, Rule, expected
from shared.migrations import upgrade_to_head_async
from shared.webhook_signing import dev_secret, signed_headers
from tests.fuzz.servers import FACTORIES, MIGRATIONS, service_settings, token
from tests.intake import builders
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database

SERVICES = ("intake", "payout", "reporting")
ENVIRONMENT = {"intake": "development", "payout": "development", "reporting": "production"}
DEV_ROLES = ("portal", "bhxh", "dolisa", "esc", "admin")  # tokens from intake's /oauth/token
VCB, ISO_BANK = "970436", "970405"


# --- the routes of the apps ------------------------------------------------------------------


def _walk(routes: list[Any]) -> list[Any]:
    found: list[Any] = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            found += _walk(route.effective_candidates())
            found += _walk(route.effective_low_priority_routes())
        else:
            found.append(route)
    return found


def app_routes(service: str, app: FastAPI) -> set[tuple[str, str, str]]:
    keys = set()
    for route in _walk(app.routes):
        if isinstance(route, Mount):
            keys.add((service, "GET", route.path + "/{path}"))
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":  # served with every GET
                keys.add((service, method, route.path))
    return keys


def _apps_for_collection() -> dict[str, FastAPI]:
    # Built without their lifespan: nothing is opened (the data directory stays unused), only the
    # routes are read.
    unused = Path(gettempdir()) / "authority-matrix-unused"
    return {
        s: FACTORIES[s](
            service_settings(
                s, database_url=None, kafka=None, data_dir=unused, environment="development"
            )
        )
        for s in SERVICES
    }


ROUTES = set().union(*(app_routes(s, app) for s, app in _apps_for_collection().items()))
CASES = sorted(ROUTES | set(RULE_OF))


# --- the calls: a request each route accepts from an allowed caller ----------------------------


@dataclass
class World:
    http: dict[str, httpx.AsyncClient]
    tokens: dict[str, str | None]  # role -> bearer token
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    path: str | Callable[[World], str]
    body: Callable[[World], Any] | None = None
    params: dict[str, str] | None = None
    form: dict[str, str] | None = None
    owner: Owner | None = None
    signed: Callable[[], tuple[str, bytes]] | None = (
        None  # (counterparty, body) for a signed control
    )

    def url(self, world: World) -> str:
        return self.path(world) if callable(self.path) else self.path


BHXH_RECORD = Owner(frozenset({"BHXH"}))
PORTAL_CLAIM = Owner(frozenset({"BHXH"}), "portal")
BHXH_UPLOAD = Owner(frozenset({"BHXH"}), "bhxh")


def _method_row(world: World) -> dict:
    return {
        "national_id": world.ids["national_id"],
        "payment_method": "OWN_ACCOUNT",
        "bank_bin": builders.VIETCOMBANK,
        "account_number": builders.account(),
    }


def _target(_: World) -> dict:
    return {
        "code": f"m-{uuid.uuid4().hex[:8]}",
        "title_vi": "Mục tiêu",
        "title_en": "Target",
        "area_type": "URBAN",
        "area_level": "province",
        "schemes": ["PENSION"],
        "target_percent": 25,
        "deadline": "2025-12-31",
    }


def _approval(_: World) -> dict:
    return {
        "outcome": "APPROVED",
        "agency": "BHXH",
        "decision_number": "QD-MATRIX-1",
        "amount_per_installment": 5_000_000,
        "schedule": {"kind": "OPEN_MONTHLY", "start_period": "2031-01"},
    }


CALLS: dict[tuple[str, str, str], Call] = {
    ("intake", "POST", "/v1/claims"): Call("/v1/claims", lambda w: builders.claim("PENSION")),
    ("intake", "GET", "/v1/claims/{claim_id}"): Call(
        lambda w: f"/v1/claims/{w.ids['claim']}", owner=PORTAL_CLAIM
    ),
    ("intake", "POST", "/v1/claims/{claim_id}/decision"): Call(
        lambda w: f"/v1/claims/{w.ids['decided_claim']}/decision", _approval, owner=BHXH_RECORD
    ),
    ("intake", "GET", "/v1/entitlements/{entitlement_id}"): Call(
        lambda w: f"/v1/entitlements/{w.ids['entitlement']}", owner=BHXH_RECORD
    ),
    ("intake", "POST", "/v1/entitlements/{entitlement_id}/stop"): Call(
        lambda w: f"/v1/entitlements/{w.ids['stopped_entitlement']}/stop",
        lambda w: {"reason": "OTHER", "effective_period": "2099-01"},
        owner=BHXH_RECORD,
    ),
    ("intake", "POST", "/v1/roll/uploads"): Call(
        "/v1/roll/uploads", lambda w: {"rows": [builders.roll_row()]}
    ),
    ("intake", "GET", "/v1/roll/uploads/{upload_id}"): Call(
        lambda w: f"/v1/roll/uploads/{w.ids['roll_upload']}", owner=BHXH_UPLOAD
    ),
    ("intake", "GET", "/v1/roll/uploads/{upload_id}/rejections.csv"): Call(
        lambda w: f"/v1/roll/uploads/{w.ids['roll_upload']}/rejections.csv", owner=BHXH_UPLOAD
    ),
    ("intake", "POST", "/v1/payment-methods/uploads"): Call(
        "/v1/payment-methods/uploads", lambda w: {"rows": [_method_row(w)]}
    ),
    ("intake", "GET", "/v1/payment-methods/uploads/{upload_id}"): Call(
        lambda w: f"/v1/payment-methods/uploads/{w.ids['method_upload']}", owner=BHXH_UPLOAD
    ),
    ("intake", "GET", "/v1/payment-methods/uploads/{upload_id}/rejections.csv"): Call(
        lambda w: f"/v1/payment-methods/uploads/{w.ids['method_upload']}/rejections.csv",
        owner=BHXH_UPLOAD,
    ),
    ("intake", "GET", "/v1/beneficiaries/{beneficiary_id}"): Call(
        lambda w: f"/v1/beneficiaries/{w.ids['beneficiary']}", owner=BHXH_RECORD
    ),
    ("intake", "POST", "/v1/beneficiaries/lookup"): Call(
        "/v1/beneficiaries/lookup",
        lambda w: {"national_id": w.ids["national_id"]},
        owner=BHXH_RECORD,
    ),
    ("intake", "GET", "/v1/beneficiaries/{beneficiary_id}/payment-methods"): Call(
        lambda w: f"/v1/beneficiaries/{w.ids['beneficiary']}/payment-methods", owner=BHXH_RECORD
    ),
    ("intake", "PUT", "/v1/beneficiaries/{beneficiary_id}/payment-method"): Call(
        lambda w: f"/v1/beneficiaries/{w.ids['beneficiary']}/payment-method",
        lambda w: {
            "method": "OWN_ACCOUNT",
            "bank_bin": builders.VIETCOMBANK,
            "account_number": builders.account(),
        },
        owner=BHXH_RECORD,
    ),
    ("intake", "POST", "/v1/users"): Call(
        "/v1/users",
        lambda w: {
            "username": f"matrix-{uuid.uuid4().hex[:10]}",
            "password": "a-long-enough-password",
            "name": "Cán bộ kiểm thử",
            "roles": ["checker"],
            "agency": "BHXH",
        },
    ),
    # A bearer token is not a client's credentials, whatever its scopes.
    ("intake", "POST", "/oauth/token"): Call(
        "/oauth/token", form={"grant_type": "client_credentials"}
    ),
    ("payout", "POST", "/v1/cycles"): Call("/v1/cycles", lambda w: {"period": "2031-04"}),
    ("payout", "GET", "/v1/cycles/{period}"): Call("/v1/cycles/2031-04"),
    ("payout", "POST", "/v1/cycles/{period}/approvals"): Call(
        "/v1/cycles/2031-04/approvals", lambda w: {"digest": "0" * 64}
    ),
    ("payout", "GET", "/v1/cycles/{period}/approvals"): Call("/v1/cycles/2031-04/approvals"),
    ("payout", "PUT", "/v1/envelopes"): Call(
        "/v1/envelopes",
        lambda w: {
            "envelopes": [
                {"period": "2031-09", "agency": "BHXH", "scheme": "PENSION", "amount": 10**9}
            ]
        },
    ),
    ("payout", "PUT", "/v1/calendar"): Call(
        "/v1/calendar",
        lambda w: {
            "entries": [
                {"pay_date": "2031-09-05", "periods": ["2031-09"], "prepare_on": "2031-08-28"}
            ]
        },
    ),
    ("payout", "GET", "/v1/installments/{installment_id}"): Call("/v1/installments/1"),
    ("payout", "GET", "/v1/batches/{batch_id}"): Call("/v1/batches/B-1"),
    ("payout", "GET", "/v1/ledger"): Call("/v1/ledger", params={"period": "2031-04"}),
    ("payout", "POST", "/v1/reconciliations"): Call(
        "/v1/reconciliations", lambda w: {"counterparty": VCB, "date": "2031-04-05"}
    ),
    ("payout", "GET", "/v1/reconciliations/{run_id}"): Call("/v1/reconciliations/1"),
    ("payout", "GET", "/v1/beneficiaries/{beneficiary_id}/payment-method"): Call(
        lambda w: f"/v1/beneficiaries/{w.ids['beneficiary']}/payment-method"
    ),
    ("payout", "POST", "/v1/webhooks/banks/{bank_bin}"): Call(
        f"/v1/webhooks/banks/{VCB}",
        signed=lambda: (VCB, orjson.dumps({"delivery_id": "d-1", "events": []})),
    ),
    ("payout", "POST", "/v1/webhooks/iso/{bank_bin}"): Call(
        f"/v1/webhooks/iso/{ISO_BANK}", signed=lambda: (ISO_BANK, b"<Document/>")
    ),
    ("payout", "POST", "/v1/webhooks/vnpost"): Call(
        "/v1/webhooks/vnpost",
        signed=lambda: ("VNPOST", orjson.dumps({"delivery_id": "d-1", "events": []})),
    ),
    ("payout", "POST", "/v1/cash-lists/items/{end_to_end_id}/handover"): Call(
        "/v1/cash-lists/items/PAY-1-1/handover",
        lambda w: {"paid_on": "2031-04-05", "staff_id": "BD-1"},
    ),
    ("payout", "POST", "/v1/cash-lists/items/{end_to_end_id}/return"): Call(
        "/v1/cash-lists/items/PAY-1-1/return", lambda w: {"reason": "NOT_FOUND"}
    ),
    ("reporting", "GET", "/v1/breakdowns/{dimension}"): Call("/v1/breakdowns/district"),
    ("reporting", "GET", "/v1/exports/{dimension}.{fmt}"): Call("/v1/exports/district.csv"),
    ("reporting", "POST", "/v1/targets"): Call("/v1/targets", _target),
    ("reporting", "GET", "/v1/targets/{target_id}"): Call("/v1/targets/no-such-target"),
    ("reporting", "PUT", "/v1/targets/{target_id}"): Call("/v1/targets/no-such-target", _target),
    ("reporting", "DELETE", "/v1/targets/{target_id}"): Call("/v1/targets/no-such-target"),
    ("reporting", "GET", "/v1/targets/{target_id}/progress"): Call(
        "/v1/targets/no-such-target/progress"
    ),
    ("reporting", "GET", "/static/{path}"): Call("/static/app.js"),
}


def call_for(key: tuple[str, str, str]) -> Call:
    if key in CALLS:
        return CALLS[key]
    assert "{" not in key[2], f"{key}: a templated route needs its call in CALLS"
    return Call(key[2])


# --- the running services and the records the calls act on -------------------------------------


async def _dev_token(intake: httpx.AsyncClient, client_id: str) -> str:
    answer = await intake.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, f"{client_id}-dev-secret"),
    )
    assert answer.status_code == 200, answer.text
    document = answer.json()
    # The development client holds exactly the table's scopes for its role.
    assert frozenset(document["scope"].split()) == ROLES[client_id], client_id
    return document["access_token"]


async def _sign_in(intake: httpx.AsyncClient, username: str) -> str:
    answer = await intake.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": DEMO_USERS[username].password,
        },
    )
    assert answer.status_code == 200, answer.text
    document = answer.json()
    # The development user holds exactly the table's scopes for their roles.
    assert frozenset(document["scope"].split()) == ROLES[username], username
    return document["access_token"]


async def _records(world: World) -> None:
    intake, bhxh = world.http["intake"], {"Authorization": f"Bearer {world.tokens['bhxh']}"}
    portal = {"Authorization": f"Bearer {world.tokens['portal']}"}
    roll = [
        builders.roll_row("PENSION"),
        builders.roll_row("PENSION"),
        builders.roll_row("PENSION", full_name="1"),
    ]
    uploaded = await intake.post("/v1/roll/uploads", json={"rows": roll}, headers=bhxh)
    assert uploaded.status_code == 201 and uploaded.json()["accepted"] == 2, uploaded.text
    [first, second] = uploaded.json()["rows"]
    world.ids.update(
        roll_upload=uploaded.json()["upload_id"],
        beneficiary=first["beneficiary_id"],
        entitlement=first["entitlement_id"],
        stopped_entitlement=second["entitlement_id"],
        national_id=roll[0]["national_id"],
    )
    methods = await intake.post(
        "/v1/payment-methods/uploads",
        headers=bhxh,
        json={"rows": [_method_row(world), {"national_id": "026000000000"}]},
    )
    assert methods.status_code == 201, methods.text
    world.ids["method_upload"] = methods.json()["upload_id"]
    for name in ("claim", "decided_claim"):
        filed = await intake.post("/v1/claims", json=builders.claim("PENSION"), headers=portal)
        assert filed.status_code == 201, filed.text
        world.ids[name] = filed.json()["claim_id"]


@pytest_asyncio.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    databases: list[str] = []
    http: dict[str, httpx.AsyncClient] = {}
    contexts = []
    try:
        for service in SERVICES:
            name, url = await create_database(f"matrix_{service}")
            databases.append(name)
            settings = service_settings(
                service,
                database_url=url,
                kafka=KAFKA_BOOTSTRAP,
                data_dir=tmp_path_factory.mktemp(service),
                environment=ENVIRONMENT[service],
            )
            await upgrade_to_head_async(MIGRATIONS[service], settings.resolved_database_url())
            app = FACTORIES[service](settings)
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
            contexts.append(lifespan)
            http[service] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{service}", timeout=30
            )
        tokens: dict[str, str | None] = {}
        for role, scopes in ROLES.items():
            if scopes is None:
                tokens[role] = None
            elif role in DEV_ROLES:
                tokens[role] = await _dev_token(http["intake"], role)
            elif role in PEOPLE:
                tokens[role] = await _sign_in(http["intake"], role)
            else:
                tokens[role] = token("intake", scopes, client_id=f"matrix-{role}")
        world = World(http, tokens)
        await _records(world)
        yield world
    finally:
        for client in http.values():
            await client.aclose()
        for lifespan in reversed(contexts):
            await lifespan.__aexit__(None, None, None)
        for name in databases:
            await drop_database(name)


async def _send(
    world: World,
    key: tuple[str, str, str],
    call: Call,
    bearer: str | None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    service, method, _ = key
    sent = dict(headers or {})
    if bearer is not None:
        sent["Authorization"] = f"Bearer {bearer}"
    body = call.body(world) if call.body is not None else None
    return await world.http[service].request(
        method,
        call.url(world),
        params=call.params,
        headers=sent,
        json=body if content is None else None,
        content=content,
        data=call.form,
    )


STATUS = {"unauthenticated": {401}, "forbidden": {403}, "hidden": {404}}


def _agrees(outcome: str, status: int) -> bool:
    if outcome == "allowed":
        return status not in (401, 403, 500)  # a 502/503 is the counterparty's answer, not ours
    return status in STATUS[outcome]


@pytest.mark.parametrize("key", CASES, ids=["{} {} {}".format(*k) for k in CASES])
async def test_every_route_answers_every_role_as_the_matrix_says(world, key):
    assert key in ROUTES, f"{key}: the table has a row for a route no app serves"
    assert key in RULE_OF, f"{key}: the route has no row in shared/authority.py"
    rule: Rule = RULE_OF[key]
    call = call_for(key)
    wrong = []
    for role, scopes in ROLES.items():
        outcome = expected(rule, scopes, call.owner, role)
        response = await _send(world, key, call, world.tokens[role])
        if not _agrees(outcome, response.status_code):
            wrong.append(
                f"{role}: expected {outcome}, got {response.status_code} {response.text[:200]}"
            )
    if rule.access == "signed":
        counterparty, raw = call.signed()  # type: ignore[misc]
        headers = {
            "Content-Type": "application/json",
            **signed_headers(counterparty, dev_secret(counterparty), raw),
        }
        response = await _send(world, key, call, None, headers, raw)
        if not _agrees("allowed", response.status_code):
            wrong.append(
                f"signed by {counterparty}: expected allowed, got {response.status_code} {response.text[:200]}"
            )
    if rule.access == "client-credentials":
        response = await world.http["intake"].post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("bhxh", "bhxh-dev-secret"),
        )
        if response.status_code != 200:
            wrong.append(f"bhxh's client credentials: expected 200, got {response.status_code}")
    assert not wrong, f"{key}:\n  " + "\n  ".join(wrong)


def test_the_development_clients_are_the_tables_roles():
    for client_id, (scopes, agency, _) in DEV_CLIENTS.items():
        issued = set(scopes) | ({AGENCY_SCOPE_PREFIX + agency} if agency else set())
        assert frozenset(issued) == ROLES[client_id], client_id
    for username, person in PEOPLE.items():
        user = DEMO_USERS[username]
        assert (frozenset(user.roles), user.agency, frozenset(user.communes)) == (
            person.roles,
            person.agency,
            person.communes,
        ), username
    assert set(DEMO_USERS) == set(PEOPLE)
    # Intake registers clients for its own scopes only: no agency's token can hold payout's or
    # reporting's, so payout's reads by beneficiary id need no ownership rule of their own.
    assert not [s for s in CLIENT_SCOPES if s.split(":")[0] in ("payout", "reports")]
    assert all(r.access != "token" or r.scopes for r in RULES), "a token row names its scopes"
