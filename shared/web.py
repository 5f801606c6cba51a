"""HTTP plumbing every service shares: RFC 9457 problem details, correlation ids, health,
readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import SpanKind
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.observability import correlation_id, new_correlation_id
from shared.tracing import span_from_traceparent

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
# RFC 9457 problem details as every service writes them (extensions allowed).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string"},
        "correlation_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string"},
                    "location": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
BEARER_SCHEME = "bearerAuth"  # the security scheme name of shared.auth


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route that may answer these statuses with problem+json (the schema is
    filled in when the OpenAPI document is built)."""
    return {status: {"content": {PROBLEM_JSON: {}}} for status in statuses}


class ProblemError(Exception):
    """Raise anywhere below the API to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = (
            type_ or f"https://benefits.example.vn/problems/{title.lower().replace(' ', '-')}"
        )
        self.extensions = extensions


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    type_: str = "about:blank",
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    cid = correlation_id.get()
    if cid:
        body["correlation_id"] = cid
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        extensions = dict(exc.extensions)
        challenge = extensions.pop("headers_hint", None)
        response = problem_response(exc.status, exc.title, exc.detail, exc.type, **extensions)
        if challenge:
            response.headers["WWW-Authenticate"] = challenge
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                # JSON Pointer (RFC 6901) to the offending field; values are never echoed back.
                "pointer": "/"
                + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in e["loc"][1:]),
                "location": str(e["loc"][0]) if e["loc"] else "body",
                "detail": e["msg"],
            }
            for e in exc.errors()
        ]
        return problem_response(
            422,
            "Unprocessable Content",
            "the request has invalid fields",
            "https://benefits.example.vn/problems/validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            409: "Conflict",
            413: "Content Too Large",
            415: "Unsupported Media Type",
        }.get(exc.status_code, "Error")
        response = problem_response(exc.status_code, title, str(exc.detail) if exc.detail else None)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        return problem_response(
            500, "Internal Server Error", "an unexpected error occurred; see the correlation id"
        )


def install_correlation_middleware(app: FastAPI, metrics: HttpMetrics, service: str) -> None:
    app.add_middleware(CorrelationMiddleware, metrics=metrics, service=service)


class CorrelationMiddleware:
    """Every request runs under its correlation id (the caller's, else a new one), in a span, and
    is counted; the answer carries the id. A plain ASGI middleware: the response streams through
    it untouched (Starlette's `BaseHTTPMiddleware` costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, service: str) -> None:
        self.app = app
        self.metrics = metrics
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cid = (request.headers.get("x-correlation-id") or new_correlation_id())[:64]
        token = correlation_id.set(cid)
        try:
            refused = _refuse_nul(request)
            if refused is not None:
                refused.headers["x-correlation-id"] = cid
                await refused(scope, receive, send)
                return
            await self._serve(scope, receive, send, request, cid)
        finally:
            correlation_id.reset(token)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, request: Request, cid: str
    ) -> None:
        status = 500
        replaced = False  # a plain-text 413 answered as a problem instead

        async def answer(message: Message) -> None:
            nonlocal status, replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if status == 413 and not headers.get("content-type", "").startswith(PROBLEM_JSON):
                    # A route's body limit answers in plain text: say it as every other problem.
                    replaced = True
                    problem = problem_response(
                        413, "Content Too Large", "the request body is too large"
                    )
                    problem.headers["x-correlation-id"] = cid
                    await problem(scope, receive, send)
                    return
                headers["x-correlation-id"] = cid
            elif replaced:
                return  # the plain-text body of the answer replaced above
            await send(message)

        method = request.method
        with (
            self.metrics.latency.labels(method).time(),
            span_from_traceparent(
                self.service,
                f"HTTP {method}",
                request.headers.get("traceparent"),
                SpanKind.SERVER,
                **{"http.request.method": method},
            ) as span,
        ):
            try:
                await self.app(scope, receive, answer)
            finally:
                span.set_attribute("http.response.status_code", status)
                route = scope.get("route")
                if route is not None:  # the template, never the raw path: paths may hold ids
                    span.update_name(f"{method} {route.path}")
                self.metrics.requests.labels(
                    method, getattr(route, "path", "unmatched"), str(status)
                ).inc()


def _refuse_nul(request: Request) -> JSONResponse | None:
    """A NUL character in the path or the query is never data (PostgreSQL text cannot even hold
    it): refuse it as an invalid field before any handler sees it."""
    where = None
    if "\x00" in request.scope.get("path", ""):
        where = ("path", "/")
    elif b"%00" in request.scope.get("query_string", b""):
        name = next(
            (k for k, v in request.query_params.multi_items() if "\x00" in k or "\x00" in v), ""
        )
        where = ("query", "/" + name.replace("\x00", "").replace("~", "~0").replace("/", "~1"))
    if where is None:
        return None
    return problem_response(
        422,
        "Unprocessable Content",
        "the request has invalid fields",
        "https://benefits.example.vn/problems/validation",
        errors=[
            {"pointer": where[1], "location": where[0], "detail": "must not contain NUL characters"}
        ],
    )


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


def install_health(app: FastAPI, registry: CollectorRegistry) -> None:
    """`/healthz`: the process is alive. `/readyz`: its database and bus answer."""

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    readiness = {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"type": "string", "enum": ["ready", "not ready"]},
                    "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        }
    }

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            200: {"description": "ready", "content": readiness},
            503: {"description": "not ready", "content": readiness},
        },
    )
    async def readyz(request: Request) -> Response:
        state = request.app.state
        checks: dict[str, str] = {}
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unreachable"
        checks["bus"] = "ok" if await state.bus.ping() else "unreachable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Gauges a service reads from its database at scrape time (`app.state.refresh_metrics`).
        refresh = getattr(request.app.state, "refresh_metrics", None)
        if refresh is not None:
            await refresh()
        # The service's own HTTP metrics, then the process-wide business metrics.
        return Response(
            generate_latest(registry) + generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST
        )


def install_problem_openapi(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above answer: every 4xx/5xx declared with
    a problem+json body has the Problem schema (FastAPI's default 422 `HTTPValidationError` in
    application/json is replaced by it), and every route guarded by the bearer scheme
    (`shared.auth.require_scopes`) declares its 401 and 403 problems."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        _declare_problems(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_problems(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    problem = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                # A JSON body that cannot be parsed at all.
                responses.setdefault(
                    "400", {"description": "The body cannot be read", "content": {PROBLEM_JSON: {}}}
                )
            if any(BEARER_SCHEME in requirement for requirement in operation.get("security", [])):
                for status, description in (
                    ("401", "Missing, expired or invalid bearer token"),
                    ("403", "The token lacks a required scope"),
                ):
                    responses.setdefault(
                        status, {"description": description, "content": {PROBLEM_JSON: {}}}
                    )
            for status, response in responses.items():
                if str(status)[:1] not in ("4", "5"):
                    continue
                content = response.get("content") or {}
                default_validation = (
                    content.get("application/json", {}).get("schema", {}).get("$ref", "")
                )
                if default_validation.endswith("/HTTPValidationError"):
                    response["content"] = dict(problem)
                elif PROBLEM_JSON in content and not content[PROBLEM_JSON].get("schema"):
                    content[PROBLEM_JSON] = dict(problem[PROBLEM_JSON])
    for unused in ("HTTPValidationError", "ValidationError"):
        others = {name: schema for name, schema in schemas.items() if name != unused}
        if f"/{unused}'" not in repr((document.get("paths", {}), others)):
            schemas.pop(unused, None)


def install_common(
    app: FastAPI, service: str, cors_origins: Sequence[str] = ()
) -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry, service)
    install_problem_handlers(app)
    install_problem_openapi(app)
    install_correlation_middleware(app, metrics, service)
    install_health(app, registry)
    install_cors(app, cors_origins)
    return registry


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Opt-in CORS for the officers' console served from another origin: only the origins
    configured (`console_origins`), a bearer token in `Authorization`, never cookies."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
