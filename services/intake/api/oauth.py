"""The token endpoint: machine clients' client credentials (RFC 6749 §4.4; errors as in §5.2)
and people's sign-in with a username and password (grant_type=password; a wrong one is a 401
problem that does not say which part was wrong). Intake signs both with its Ed25519 key and
publishes the public half: `/.well-known/openid-configuration`, `/.well-known/jwks.json`."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake.adapters import repository
from services.intake.adapters.orm import clients
from services.intake.service_layer import users
from services.intake.service_layer.clients import authenticate
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.auth import (
    AGENCY_SCOPE_PREFIX,
    ALGORITHMS,
    PERSON,
    WELL_KNOWN_CONFIGURATION,
    WELL_KNOWN_JWKS,
    issue_token,
)
from shared.authority import scopes_of_roles
from shared.uow import unit_of_work
from shared.web import problem_response

router = APIRouter(tags=["access"])
CLIENT_ID_MAX: int = getattr(clients.c.client_id.type, "length", None) or 100  # the column's width
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, error: str, description: str, basic: bool = False) -> JSONResponse:
    headers = dict(NO_STORE)
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="vn-benefits"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote(client_id), unquote(secret)


OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


@router.post(
    "/oauth/token",
    summary="Issue a bearer token (client credentials, HTTP Basic or form fields)",
    responses={
        200: {
            "description": "a bearer token",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["access_token", "token_type", "expires_in"],
                        "properties": {
                            "access_token": {"type": "string"},
                            "token_type": {"type": "string"},
                            "expires_in": {"type": "integer"},
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        },
        400: {
            "description": "RFC 6749 error",
            "content": {"application/json": {"schema": OAUTH_ERROR}},
        },
        401: {
            "description": "RFC 6749 error: unknown client or wrong secret; for a person's "
            "sign-in, a problem (the username or password is wrong, or the account is locked "
            "or disabled: which of these is not said)",
            "content": {
                "application/json": {"schema": OAUTH_ERROR},
                "application/problem+json": {"schema": OAUTH_ERROR},
            },
        },
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {
                                "type": "string",
                                "enum": ["client_credentials", "password"],
                            },
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "username": {"type": "string", "description": "grant_type=password"},
                            "password": {"type": "string", "description": "grant_type=password"},
                            "scope": {
                                "type": "string",
                                "description": "space-separated subset of the client's scopes",
                            },
                        },
                    }
                }
            }
        }
    },
)
async def token(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request", "send an application/x-www-form-urlencoded body")
    form = await request.form()
    grant_type = form.get("grant_type")
    if grant_type == "password":
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return _error(400, "invalid_request", "send a username and a password")
        return await _sign_in(request, username, password)
    if grant_type != "client_credentials":
        return _error(
            400,
            "unsupported_grant_type" if grant_type else "invalid_request",
            "grant_type is client_credentials or password",
        )
    credentials = _basic(request.headers.get("authorization", ""))
    if credentials is None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if (
            not isinstance(client_id, str)
            or not isinstance(secret, str)
            or not client_id
            or not secret
        ):
            return _error(401, "invalid_client", "client authentication failed", basic=True)
        credentials = (client_id, secret)
    runtime = request.app.state.runtime
    client_id, secret = credentials
    if "\x00" in client_id or len(client_id) > CLIENT_ID_MAX:  # no client has such an id
        return _error(401, "invalid_client", "client authentication failed", basic=True)
    async with runtime.engine.connect() as conn:
        stored = await repository.client(conn, client_id)
    client = await authenticate(stored, secret)
    if client is None:
        return _error(401, "invalid_client", "client authentication failed", basic=True)
    requested = form.get("scope")
    scopes = set(client.scopes)
    if isinstance(requested, str) and requested.strip():
        wanted = set(requested.split())
        if not wanted <= client.scopes:
            return _error(
                400,
                "invalid_scope",
                "the client may not have: " + " ".join(sorted(wanted - client.scopes)),
            )
        scopes = wanted
    if client.agency:
        scopes.add(AGENCY_SCOPE_PREFIX + client.agency)
    settings = request.app.state.settings
    ttl = settings.token_ttl_seconds
    access_token = issue_token(
        request.app.state.signing_key,
        client.client_id,
        scopes,
        ttl,
        issuer=settings.token_issuer,
        audience=settings.oidc_audience,
    )
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(sorted(scopes)),
        },
        headers=NO_STORE,
    )


BAD_SIGN_IN = "the username or password is wrong, or the account may not sign in now"


async def _sign_in(request: Request, username: str, password: str) -> JSONResponse:
    settings = request.app.state.settings
    runtime = request.app.state.runtime

    # Committed whatever the answer: a wrong password counts towards the lockout.
    actor = username[: users.USERNAME_MAX]
    async with unit_of_work(runtime.engine, runtime.outbox, actor, kind=IntakeUnitOfWork) as uow:
        user = await users.sign_in(
            uow,
            username,
            password,
            lockout_failures=settings.lockout_failures,
            lockout_minutes=settings.lockout_minutes,
        )
    if user is None:
        return problem_response(
            401,
            "Unauthorized",
            BAD_SIGN_IN,
            "https://benefits.example.vn/problems/sign-in-failed",
            error="invalid_grant",
        )
    scopes = scopes_of_roles(user.roles)
    ttl = settings.token_ttl_seconds
    access_token = issue_token(
        request.app.state.signing_key,
        user.username,
        scopes,
        ttl,
        issuer=settings.token_issuer,
        audience=settings.oidc_audience,
        kind=PERSON,
        roles=user.roles,
        agency=user.agency,
        communes=user.communes,
        name=user.name,
    )
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(sorted(scopes)),
            "roles": sorted(user.roles),
            "agency": user.agency,
        },
        headers=NO_STORE,
    )


def _base_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


@router.get(
    WELL_KNOWN_CONFIGURATION,
    summary="OpenID Connect discovery: the issuer, its token endpoint and its keys",
)
async def openid_configuration(request: Request) -> JSONResponse:
    base = _base_url(request)
    return JSONResponse(
        {
            "issuer": request.app.state.settings.token_issuer,
            "token_endpoint": base + "/oauth/token",
            "jwks_uri": base + WELL_KNOWN_JWKS,
            "grant_types_supported": ["client_credentials", "password"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS[:1]),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get(WELL_KNOWN_JWKS, summary="The public keys that verify intake's tokens (JWKS)")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(
        request.app.state.signing_key.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
