"""OAuth2 client-credentials token endpoint (RFC 6749 §4.4); errors as in RFC 6749 §5.2."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake.adapters import repository
from services.intake.adapters.orm import clients
from services.intake.service_layer.clients import authenticate
from shared.auth import AGENCY_SCOPE_PREFIX, issue_token

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
            "description": "RFC 6749 error: unknown client or wrong secret",
            "content": {"application/json": {"schema": OAUTH_ERROR}},
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
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
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
    if grant_type != "client_credentials":
        return _error(
            400,
            "unsupported_grant_type" if grant_type else "invalid_request",
            "only grant_type=client_credentials is supported",
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
    ttl = request.app.state.settings.token_ttl_seconds
    access_token = issue_token(request.app.state.settings.jwt_secret, client.client_id, scopes, ttl)
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(sorted(scopes)),
        },
        headers=NO_STORE,
    )
