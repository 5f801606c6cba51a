"""OAuth2 client-credentials bearer tokens (JWT, HS256) and scope checks.

Intake issues tokens to registered clients; every service verifies them with the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.web import ProblemError

ISSUER = "vn-benefits"
AUDIENCE = "vn-benefits-api"
ALGORITHM = "HS256"
# Declares the bearer scheme in the OpenAPI document; the token itself is checked below.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="OAuth2 client-credentials token issued by intake's `POST /oauth/token`",
)


AGENCY_SCOPE_PREFIX = "agency:"


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


def issue_token(
    secret: str,
    client_id: str,
    scopes: set[str] | frozenset[str],
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client_id,
        "scope": " ".join(sorted(scopes)),
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("the token is not valid") from exc
    return Principal(str(claims["sub"]), frozenset(str(claims.get("scope", "")).split()))


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "Unauthorized",
        detail,
        type_="https://benefits.example.vn/problems/unauthorized",
        headers_hint='Bearer realm="vn-benefits"',
    )


def require_scopes(*scopes: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: a valid bearer token holding every one of `scopes`."""

    def dependency(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None
    ) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _space, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("a bearer token is required")
        principal = verify_token(request.app.state.settings.jwt_secret, token.strip())
        missing = [s for s in scopes if not principal.can(s)]
        if missing:
            raise ProblemError(
                403,
                "Forbidden",
                f"the token lacks the scope(s): {', '.join(missing)}",
                type_="https://benefits.example.vn/problems/insufficient-scope",
            )
        request.state.principal = principal
        return principal

    return dependency


def optional_principal(request: Request) -> Principal | None:
    """The caller's principal if a valid token was sent, else None (for masking decisions)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return verify_token(request.app.state.settings.jwt_secret, token.strip())


# Client secrets are stored as salted scrypt hashes, never in clear.
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
