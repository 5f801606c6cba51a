"""Bearer tokens signed with asymmetric keys, their verification, and scope checks.

Intake is the built-in issuer: it signs with an Ed25519 key (JWT `alg` EdDSA, a `kid` in the
header) that only it holds, and publishes the public half as a JWKS document
(`/.well-known/jwks.json`). Every service verifies with public keys only: a key set loaded from a
JWKS document (a file or JSON) or fetched from a JWKS URL (cached, refetched on an unknown `kid`
at most every few seconds, failing closed), or discovered from an OpenID Connect issuer's
`/.well-known/openid-configuration`. Verification accepts only asymmetric algorithms, so a token
"signed" with a shared secret (HS256) or with none is refused whatever its content.

Machine clients' tokens carry their scopes (`scope`); a person's token carries `kind: person`,
roles, an agency, communes and a name, and its scopes are the roles' (`shared.authority`). An
external issuer (a Keycloak realm) is read the same way: `realm_access.roles` or a top-level
`roles` claim, and `agency`/`communes` claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.web import ProblemError

log = logging.getLogger(__name__)

ISSUER = "vn-benefits"  # intake's `iss` unless configured otherwise
AUDIENCE = "vn-benefits-api"
SIGNING_ALGORITHM = "EdDSA"
# The only algorithms a token may name: asymmetric ones (EdDSA ours; ES256 and RS256 for external
# issuers). A symmetric or "none" token is refused before any key is looked at.
ALGORITHMS = ("EdDSA", "ES256", "RS256")
LEEWAY_SECONDS = 30  # clock skew tolerated on exp and iat
WELL_KNOWN_CONFIGURATION = "/.well-known/openid-configuration"
WELL_KNOWN_JWKS = "/.well-known/jwks.json"

# Declares the bearer scheme in the OpenAPI document; the token itself is checked below.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="a token from intake's `POST /oauth/token` (client credentials or a person's "
    "sign-in) or from the configured OpenID Connect issuer",
)


AGENCY_SCOPE_PREFIX = "agency:"
CLIENT, PERSON = "client", "person"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a machine client (the portal, an agency's system) or a person (an
    officer signed in). `client_id` is the token's subject either way."""

    client_id: str
    scopes: frozenset[str]
    kind: str = "client"  # "client" | "person"
    roles: frozenset[str] = frozenset()  # a person's roles (shared/authority.py: PERSON_ROLES)
    agency_claim: str | None = None  # a person's agency
    communes: frozenset[str] = frozenset()  # a commune official's or post-office staff's communes
    name: str | None = None  # a person's display name, for the audit trail

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_person(self) -> bool:
        return self.kind == "person"

    @property
    def agency(self) -> str | None:
        """A person's agency; an agency's client carries `agency:<AGENCY>` in its token. Either
        acts for that agency only."""
        if self.agency_claim is not None:
            return self.agency_claim
        for scope in self.scopes:
            if scope.startswith(AGENCY_SCOPE_PREFIX):
                return scope[len(AGENCY_SCOPE_PREFIX) :]
        return None


# --- signing (intake only) ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key and its `kid` (the RFC 7638 thumbprint of its public key, so the
    same key always has the same id)."""

    private_key: Ed25519PrivateKey = field(repr=False)
    kid: str = ""

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.of(Ed25519PrivateKey.generate())

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        public = _public_bytes(private_key)
        thumbprint = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": _b64(public)}, separators=(",", ":")
        )
        return cls(private_key, _b64(hashlib.sha256(thumbprint.encode()).digest()))

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key (PKCS#8 PEM)")
        return cls.of(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64(_public_bytes(self.private_key)),
            "kid": self.kid,
            "use": "sig",
            "alg": SIGNING_ALGORITHM,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims), self.private_key, algorithm=SIGNING_ALGORITHM, headers={"kid": self.kid}
        )


def _public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def load_signing_key(path: Path, *, create: bool = False) -> SigningKey:
    """The key in `path` (PKCS#8 PEM). With `create` (development only), a missing file is
    generated with mode 0600; otherwise a missing or unreadable file raises with a clear message
    (never the key's content)."""
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"the token signing key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = SigningKey.generate()
        draft = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key.to_pem())
        try:
            os.link(draft, path)  # whole or not at all; a concurrent creator's key wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        if path.read_bytes() == key.to_pem():
            return key
    try:
        return SigningKey.from_pem(path.read_bytes())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the token signing key file {path} holds no Ed25519 private key") from exc


def issue_token(
    key: SigningKey,
    subject: str,
    scopes: Iterable[str] = (),
    ttl_seconds: int = 3600,
    now: float | None = None,
    *,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    kind: str = CLIENT,
    roles: Iterable[str] = (),
    agency: str | None = None,
    communes: Iterable[str] = (),
    name: str | None = None,
) -> str:
    """A signed token for a client (its scopes) or a person (roles, agency, communes, name; the
    scopes are the roles' and given for information). Only a private key can sign."""
    if not isinstance(key, SigningKey):
        raise TypeError("issue_token signs with a SigningKey (an Ed25519 private key) only")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "scope": " ".join(sorted(set(scopes))),
        "iat": issued,
        "exp": issued + ttl_seconds,
        "kind": kind,
    }
    if kind == PERSON:
        claims.update(
            roles=sorted(set(roles)), agency=agency, communes=sorted(set(communes)), name=name
        )
    return key.sign(claims)


# --- key sets ----------------------------------------------------------------------------------


class KeySet(Protocol):
    def key(self, kid: str | None) -> jwt.PyJWK | None: ...

    @property
    def local(self) -> bool: ...


def _parse_jwks(document: Any) -> dict[str | None, jwt.PyJWK]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS document is an object with a `keys` list")
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        if "d" in entry:  # a private key has no business in a key set; refuse it loudly
            raise ValueError("a JWKS document to verify with must hold public keys only")
        try:
            parsed = jwt.PyJWK(dict(entry))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue  # a key type we do not use (an encryption key, an unknown curve)
        if parsed.algorithm_name not in ALGORITHMS:
            continue
        keys[entry.get("kid")] = parsed
    return keys


def _pick(keys: Mapping[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is not None:
        return keys.get(kid)
    return next(iter(keys.values())) if len(keys) == 1 else None


class StaticKeySet:
    """Public keys given once: a JWKS document (JSON text, a mapping, or a file)."""

    local = True

    def __init__(self, document: Any) -> None:
        if isinstance(document, (str, bytes)):
            document = json.loads(document)
        self._keys = _parse_jwks(document)

    @classmethod
    def from_file(cls, path: Path) -> StaticKeySet:
        try:
            return cls(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"the JWKS file {path} is not a readable key set: {exc}") from exc

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        return _pick(self._keys, kid)


def _fetch_json(url: str, timeout: float) -> Any:
    if not url.startswith(("https://", "http://")):
        raise ValueError("only http(s) URLs are fetched")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(
        request, timeout=timeout
    ) as response:  # http(s) only, checked above
        return json.loads(response.read(1_000_000))


class RemoteKeySet:
    """Public keys fetched from a JWKS URL (or discovered from an issuer's OpenID configuration):
    cached for `max_age` seconds, refetched when a token names an unknown `kid` (at most once
    every `min_interval` seconds), kept for `max_stale` seconds while the issuer is unreachable,
    and none at all after that: a token that cannot be checked is refused."""

    local = False

    def __init__(
        self,
        url: str | None = None,
        *,
        issuer: str | None = None,
        max_age: float = 300.0,
        min_interval: float = 5.0,
        max_stale: float = 3600.0,
        timeout: float = 3.0,
        fetch: Callable[[str, float], Any] = _fetch_json,
    ) -> None:
        if url is None and issuer is None:
            raise ValueError("a JWKS URL or an issuer to discover it from is required")
        self.url, self.issuer = url, issuer
        self.max_age, self.min_interval, self.max_stale = max_age, min_interval, max_stale
        self.timeout, self._fetch = timeout, fetch
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = threading.Lock()

    def _jwks_url(self) -> str:
        if self.url is not None:
            return self.url
        assert self.issuer is not None
        document = self._fetch(self.issuer.rstrip("/") + WELL_KNOWN_CONFIGURATION, self.timeout)
        if not isinstance(document, Mapping) or document.get("issuer") != self.issuer:
            raise ValueError("the OpenID configuration names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise ValueError("the OpenID configuration has no jwks_uri")
        self.url = uri
        return uri

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            self._keys = _parse_jwks(self._fetch(self._jwks_url(), self.timeout))
            self._fetched_at = now
        except Exception as exc:  # any failure: keep what we had, then fail closed
            log.warning(
                "token keys could not be fetched",
                extra={"fields": {"issuer": self.issuer, "error": type(exc).__name__}},
            )
            if now - self._fetched_at > self.max_stale:
                self._keys = {}

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        with self._lock:
            now = time.monotonic()
            found = _pick(self._keys, kid)
            stale = now - self._fetched_at > self.max_age
            if (found is None or stale) and now - self._attempted_at >= self.min_interval:
                self._refresh(now)
                found = _pick(self._keys, kid)
            if now - self._fetched_at > self.max_stale:
                return None
            return found


# --- verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer whose tokens are accepted: its `iss`, its public keys and the audience it
    addresses to us. `external`: an OpenID Connect provider whose tokens are people's."""

    issuer: str
    keys: KeySet
    audience: str = AUDIENCE
    external: bool = False


class TokenVerifier:
    """Verifies bearer tokens of the trusted issuers with their public keys. It holds no key that
    can sign. A token verified in the last minute (and not expired) is not verified again: the
    portal sends the same token with thousands of filings."""

    CACHE_SECONDS = 60.0
    CACHE_MAX = 10_000

    def __init__(self, issuers: Sequence[TrustedIssuer]) -> None:
        if not issuers:
            raise ValueError("a verifier trusts at least one issuer")
        self.issuers = {i.issuer: i for i in issuers}
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def local(self) -> bool:
        """True when no verification can wait on the network (every key set is static)."""
        return all(i.keys.local for i in self.issuers.values())

    def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= self.CACHE_MAX:
            self._verified.clear()
        self._verified[token] = (principal, min(expires, now + self.CACHE_SECONDS))
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise _unauthorized("the token is not valid") from exc
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise _unauthorized("the token is not signed with an accepted algorithm")
        trusted = self.issuers.get(str(unverified.get("iss")))
        if trusted is None:
            raise _unauthorized("the token is not valid")
        kid = header.get("kid")
        key = trusted.keys.key(kid if isinstance(kid, str) else None)
        if key is None or key.algorithm_name != algorithm:
            raise _unauthorized("the token is not valid")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=trusted.audience,
                issuer=trusted.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise _unauthorized("the token is not valid") from exc
        if float(claims["iat"]) > time.time() + LEEWAY_SECONDS:
            raise _unauthorized("the token is not valid")
        return principal_of_claims(claims, external=trusted.external), float(claims["exp"])


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


def principal_of_claims(claims: Mapping[str, Any], *, external: bool = False) -> Principal:
    """The caller a verified token names: a client when it says `kind: client` (and its issuer
    is not an external one), else a person. A person's scopes are their roles' (never a scope
    claim); roles we do not know are ignored; a person whose
    roles lack the agency or communes they must be bound to is refused."""
    from shared import authority  # authority reads Principal from here

    subject = str(claims["sub"])
    if not external and claims.get("kind") == CLIENT:
        return Principal(subject, frozenset(_strings(claims.get("scope"))))
    realm = claims.get("realm_access")
    named = _strings(claims.get("roles"))
    if isinstance(realm, Mapping):
        named += _strings(realm.get("roles"))
    roles = frozenset(r for r in named if r in authority.PERSON_ROLES)
    agency = claims.get("agency")
    agency = agency if isinstance(agency, str) and agency else None
    communes = frozenset(_strings(claims.get("communes")))
    problems = authority.binding_problems(roles, agency, communes)
    if problems:
        raise ProblemError(
            403,
            "Forbidden",
            "the token's roles are not bound as they must be: " + "; ".join(problems),
            type_="https://benefits.example.vn/problems/unbound-role",
        )
    name = claims.get("name") or claims.get("preferred_username")
    return Principal(
        subject,
        authority.scopes_of_roles(roles),
        kind=PERSON,
        roles=roles,
        agency_claim=agency,
        communes=communes,
        name=str(name) if name else None,
    )


def key_set(jwks_file: Path | None, jwks_url: str | None, issuer: str | None) -> KeySet:
    """The public keys of an issuer: a JWKS file, else a JWKS URL, else discovered from the
    issuer's OpenID configuration."""
    if jwks_file is not None:
        return StaticKeySet.from_file(jwks_file)
    if jwks_url is not None:
        return RemoteKeySet(jwks_url, issuer=issuer)
    if issuer is None:
        raise ValueError("a JWKS file, a JWKS URL or an issuer to discover them from is required")
    return RemoteKeySet(issuer=issuer)


# Where payout and reporting find intake's keys when nothing else is configured (one machine).
INTAKE_JWKS_URL = "http://127.0.0.1:8001" + WELL_KNOWN_JWKS


class TokenSettings(Protocol):
    @property
    def oidc_issuer(self) -> str | None: ...
    @property
    def oidc_audience(self) -> str: ...
    @property
    def jwks_url(self) -> str | None: ...
    @property
    def jwks_file(self) -> Path | None: ...


def verifier_for(settings: TokenSettings, own: TrustedIssuer | None = None) -> TokenVerifier:
    """The verifier a service's settings describe. Without `own` (payout, reporting): the
    configured issuer, by default intake's (`ISSUER`, keys at `INTAKE_JWKS_URL`). With `own`
    (intake, verifying its tokens with its own public key): that one, and the configured issuer's
    tokens too when one is set; theirs are people's."""
    configured = settings.oidc_issuer, settings.jwks_url, settings.jwks_file
    issuers = [own] if own is not None else []
    if any(v is not None for v in configured):
        issuer = settings.oidc_issuer or ISSUER
        if own is not None and issuer == own.issuer:
            raise ValueError(
                f"the external issuer {issuer!r} is intake's own: an external issuer needs its "
                "own `iss`"
            )
        keys = key_set(settings.jwks_file, settings.jwks_url, settings.oidc_issuer)
        issuers.append(
            TrustedIssuer(issuer, keys, settings.oidc_audience, external=own is not None)
        )
    elif own is None:
        issuers.append(TrustedIssuer(ISSUER, RemoteKeySet(INTAKE_JWKS_URL), settings.oidc_audience))
    return TokenVerifier(issuers)


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "Unauthorized",
        detail,
        type_="https://benefits.example.vn/problems/unauthorized",
        headers_hint='Bearer realm="vn-benefits"',
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _space, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verifier_of(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise _unauthorized("tokens cannot be verified")  # fail closed
    return verifier


def authenticate(request: Request) -> Principal:
    """The bearer token's principal (401 without a valid one)."""
    token = _bearer(request)
    if token is None:
        raise _unauthorized("a bearer token is required")
    return verifier_of(request).verify(token)


def check_scopes(principal: Principal, scopes: Sequence[str]) -> None:
    missing = [s for s in scopes if not principal.can(s)]
    if missing:
        raise ProblemError(
            403,
            "Forbidden",
            f"the token lacks the scope(s): {', '.join(missing)}",
            type_="https://benefits.example.vn/problems/insufficient-scope",
        )


def require_scopes(*scopes: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: a valid bearer token holding every one of `scopes`."""

    def dependency(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None
    ) -> Principal:
        principal = authenticate(request)
        check_scopes(principal, scopes)
        request.state.principal = principal
        return principal

    return dependency


def optional_principal(request: Request) -> Principal | None:
    """The caller's principal if a valid token was sent, else None (for masking decisions)."""
    if _bearer(request) is None:
        return None
    return authenticate(request)


# Client secrets and passwords are stored as salted scrypt hashes, never in clear.
def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)
