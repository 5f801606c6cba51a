"""Where the services find the keys that verify tokens: intake's JWKS verifies intake's tokens
(payout fetches it over HTTP and holds nothing that could sign), a new key (rotation) is picked
up on its first token while unknown key ids are not fetched again and again, an unreachable key
set fails closed, and an external OpenID Connect issuer (a Keycloak realm: discovery, a JWKS of
ES256 keys, `realm_access.roles`, `agency` and `communes` claims) is trusted when configured,
by payout alone or by intake alongside its own tokens."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from services.intake.service_layer.users import DEMO_USERS
from shared.auth import (
    AUDIENCE,
    ISSUER,
    WELL_KNOWN_CONFIGURATION,
    WELL_KNOWN_JWKS,
    RemoteKeySet,
    SigningKey,
    StaticKeySet,
    TokenVerifier,
    TrustedIssuer,
)
from shared.authority import PERSON_ROLES
from shared.migrations import upgrade_to_head_async
from shared.web import ProblemError
from tests.fuzz.servers import FACTORIES, MIGRATIONS, ServiceServer, service_settings
from tests.support import tokens

# --- a small OpenID Connect provider: discovery and a JWKS, changeable, counting its hits ------


@dataclass
class Provider:
    documents: dict[str, Any] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    url: str = ""
    down: bool = False


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            document = None if state.down else state.documents.get(self.path)
            if document is None:
                self.send_response(503 if state.down else 404)
                self.end_headers()
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Realm:
    """A Keycloak realm's signing key (ES256) and tokens shaped like Keycloak's."""

    issuer: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def publish(self, provider: Provider) -> None:
        realm_path = self.issuer.removeprefix(provider.url)
        provider.documents[realm_path + WELL_KNOWN_CONFIGURATION] = {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
        }
        provider.documents[realm_path + "/protocol/openid-connect/certs"] = self.jwks()

    def token(self, realm_roles: list[str], **claims: Any) -> str:
        now = int(time.time())
        body = {
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": [AUDIENCE, "account"],
            "sub": str(uuid.uuid4()),
            "typ": "Bearer",
            "azp": "benefits-console",
            "realm_access": {"roles": [*realm_roles, "offline_access", "default-roles-benefits"]},
            "scope": "openid profile email",
            "preferred_username": "kc.officer",
            "name": "Trần Thị Duyệt",
            **claims,
        }
        return jwt.encode(body, self.key, algorithm="ES256", headers={"kid": self.kid})


@asynccontextmanager
async def _app(service: str, data_dir: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = service_settings(
        service,
        database_url=None,
        kafka=None,
        data_dir=data_dir,
        environment="development",
        **overrides,
    )
    await upgrade_to_head_async(MIGRATIONS[service], settings.resolved_database_url())
    app: FastAPI = FACTORIES[service](settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- intake's own keys --------------------------------------------------------------------------


class TestIntakesKeys:
    async def test_the_published_jwks_verifies_intakes_tokens(self, tmp_path):
        async with _app("intake", tmp_path, signing_key_file=None) as intake:
            configuration = (await intake.get(WELL_KNOWN_CONFIGURATION)).json()
            assert configuration["issuer"] == ISSUER
            assert configuration["jwks_uri"] == "http://intake" + WELL_KNOWN_JWKS
            assert configuration["token_endpoint"] == "http://intake/oauth/token"
            document = (await intake.get(WELL_KNOWN_JWKS)).json()
            assert [k["kty"] for k in document["keys"]] == ["OKP"]
            assert not any("d" in k for k in document["keys"]), "public keys only"
            answer = await intake.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("bhxh", "bhxh-dev-secret"),
            )
            assert answer.status_code == 200, answer.text
            access = answer.json()["access_token"]
            assert jwt.get_unverified_header(access) == {
                "alg": "EdDSA",
                "typ": "JWT",
                "kid": document["keys"][0]["kid"],
            }
        verifier = TokenVerifier([TrustedIssuer(ISSUER, StaticKeySet(document))])
        principal = verifier.verify(access)
        assert principal.client_id == "bhxh" and principal.agency == "BHXH"
        other = TokenVerifier([TrustedIssuer(ISSUER, StaticKeySet(tokens.JWKS))])
        with pytest.raises(ProblemError) as refused:
            other.verify(access)
        assert refused.value.status == 401

    async def test_payout_fetches_intakes_jwks_and_accepts_a_signed_in_person(self, tmp_path):
        intake = await ServiceServer(
            "intake",
            service_settings(
                "intake",
                database_url=None,
                kafka=None,
                data_dir=tmp_path / "intake",
                environment="development",
                signing_key_file=None,  # a key of its own, generated: not the tests' key
            ),
        ).start()
        try:
            async with httpx.AsyncClient(base_url=intake.base_url) as http:
                answer = await http.post(
                    "/oauth/token",
                    data={
                        "grant_type": "password",
                        "username": "bhxh-checker",
                        "password": DEMO_USERS["bhxh-checker"].password,
                    },
                )
            assert answer.status_code == 200, answer.text
            person = answer.json()["access_token"]
            async with _app(
                "payout",
                tmp_path / "payout",
                jwks_file=None,
                jwks_url=intake.base_url + WELL_KNOWN_JWKS,
            ) as payout:
                status = await payout.get("/v1/status", headers=_bearer(person))
                assert status.status_code == 200, status.text
                # The tests' key is not intake's: its tokens are refused.
                foreign = await payout.get(
                    "/v1/status", headers=_bearer(tokens.token({"payout:read"}))
                )
                assert foreign.status_code == 401
        finally:
            await intake.stop()


# --- a key set fetched over HTTP ------------------------------------------------------------------


class TestRemoteKeys:
    def test_a_new_key_is_picked_up_on_its_first_token(self, provider):
        old, new = SigningKey.generate(), SigningKey.generate()
        provider.documents["/jwks"] = old.jwks()
        keys = RemoteKeySet(provider.url + "/jwks", min_interval=0.0)
        verifier = TokenVerifier([TrustedIssuer(ISSUER, keys)])
        assert verifier.verify(tokens.token({"payout:read"}, key=old)).can("payout:read")
        assert provider.hits["/jwks"] == 1
        # The issuer rotates: it publishes the new key beside the old one and signs with it.
        provider.documents["/jwks"] = {"keys": [*new.jwks()["keys"], *old.jwks()["keys"]]}
        assert verifier.verify(tokens.token({"payout:read"}, key=new, sub="after")).can(
            "payout:read"
        )
        assert provider.hits["/jwks"] == 2
        # Known keys are not fetched again (within the cache's age).
        verifier.verify(tokens.token({"payout:read"}, key=old, sub="again"))
        assert provider.hits["/jwks"] == 2

    def test_unknown_key_ids_are_fetched_at_most_every_few_seconds(self, provider):
        provider.documents["/jwks"] = SigningKey.generate().jwks()
        keys = RemoteKeySet(provider.url + "/jwks", min_interval=60.0)
        verifier = TokenVerifier([TrustedIssuer(ISSUER, keys)])
        for n in range(5):
            with pytest.raises(ProblemError) as refused:
                verifier.verify(
                    tokens.token({"payout:read"}, key=SigningKey.generate(), sub=f"x{n}")
                )
            assert refused.value.status == 401
        assert provider.hits["/jwks"] == 1

    def test_an_unreachable_key_set_fails_closed(self, provider):
        provider.down = True
        verifier = TokenVerifier([TrustedIssuer(ISSUER, RemoteKeySet(provider.url + "/jwks"))])
        with pytest.raises(ProblemError) as refused:
            verifier.verify(tokens.token({"payout:read"}))
        assert refused.value.status == 401

    def test_keys_kept_while_the_issuer_is_briefly_away_are_dropped_after_max_stale(self, provider):
        key = SigningKey.generate()
        provider.documents["/jwks"] = key.jwks()
        keys = RemoteKeySet(provider.url + "/jwks", max_age=0.0, min_interval=0.0, max_stale=0.5)
        verifier = TokenVerifier([TrustedIssuer(ISSUER, keys)])
        verifier.verify(tokens.token({"payout:read"}, key=key, sub="a"))
        provider.down = True
        verifier.verify(tokens.token({"payout:read"}, key=key, sub="b"))  # kept for a while
        time.sleep(0.6)
        with pytest.raises(ProblemError):
            verifier.verify(tokens.token({"payout:read"}, key=key, sub="c"))

    def test_a_jwks_with_a_private_key_is_refused(self):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1())))
        assert "d" in jwk
        with pytest.raises(ValueError, match="public keys only"):
            StaticKeySet({"keys": [jwk]})


# --- an external OpenID Connect issuer ------------------------------------------------------------


class TestExternalIssuer:
    async def test_payout_trusts_a_keycloak_realm_by_discovery_and_maps_its_roles(
        self, provider, tmp_path
    ):
        realm = Realm(provider.url + "/realms/benefits")
        realm.publish(provider)
        async with _app("payout", tmp_path, jwks_file=None, oidc_issuer=realm.issuer) as payout:
            checker = realm.token(["checker"], agency="BHXH")
            status = await payout.get("/v1/status", headers=_bearer(checker))
            assert status.status_code == 200, status.text
            principal = payout.app.state.token_verifier.verify(checker)  # type: ignore[attr-defined]
            assert principal.is_person and principal.roles == {"checker"}
            assert principal.agency == "BHXH" and principal.scopes == PERSON_ROLES["checker"]
            assert principal.name == "Trần Thị Duyệt"
            # A checker may not prepare a cycle: the roles decide, not Keycloak's scope claim.
            prepare = await payout.post(
                "/v1/cycles", json={"period": "2031-04"}, headers=_bearer(checker)
            )
            assert prepare.status_code == 403, prepare.text
            # A post office's staff with communes, from a top-level roles claim.
            staff = realm.token(
                [], roles=["post-office"], agency="BHXH", communes=["08707", "08710"]
            )
            mapped = payout.app.state.token_verifier.verify(staff)  # type: ignore[attr-defined]
            assert mapped.roles == {"post-office"} and mapped.communes == {"08707", "08710"}
            # A role without its agency is refused; so are another realm's key and intake's tokens.
            unbound = await payout.get("/v1/status", headers=_bearer(realm.token(["checker"])))
            assert unbound.status_code == 403
            impostor = Realm(realm.issuer, kid=realm.kid)
            forged = await payout.get("/v1/status", headers=_bearer(impostor.token(["leader"])))
            assert forged.status_code == 401
            ours = await payout.get("/v1/status", headers=_bearer(tokens.token({"payout:read"})))
            assert ours.status_code == 401, "only the configured issuer is trusted"
            wrong_audience = realm.token(["leader"], aud="account")
            assert (
                await payout.get("/v1/status", headers=_bearer(wrong_audience))
            ).status_code == 401
        assert provider.hits["/realms/benefits" + WELL_KNOWN_CONFIGURATION] == 1

    async def test_intake_accepts_the_realms_people_alongside_its_own_tokens(
        self, provider, tmp_path
    ):
        realm = Realm(provider.url + "/realms/benefits")
        realm.publish(provider)
        async with _app("intake", tmp_path, oidc_issuer=realm.issuer) as intake:
            maker = realm.token(["maker"], agency="DOLISA")
            claims = await intake.get("/v1/claims", headers=_bearer(maker))
            assert claims.status_code == 200, claims.text
            own = tokens.token({"claims:read"}, sub="portal")
            assert (await intake.get("/v1/claims", headers=_bearer(own))).status_code == 200
            # The realm's tokens are people's: a client-shaped one gains no scope from its claim.
            client_shaped = realm.token([], kind="client", scope="audit:read")
            audit = await intake.get("/v1/audit", headers=_bearer(client_shaped))
            assert audit.status_code == 403, audit.text


def test_an_external_issuer_cannot_take_intakes_own_name(tmp_path):
    from services.intake.bootstrap import create_app
    from services.intake.settings import IntakeSettings

    settings = IntakeSettings(
        environment="development", data_dir=tmp_path, oidc_issuer=ISSUER, jwks_url="http://x"
    )
    with pytest.raises(ValueError, match="intake's own"):
        create_app(settings)
