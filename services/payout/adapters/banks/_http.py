"""HTTP calls to a counterparty, with failures sorted into what the caller may do next."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from .base import (
    DUPLICATE_CODES,
    CredentialsRefused,
    PermanentBankError,
    TransientBankError,
    UnknownOutcome,
)

JSON_HEADERS = {"Content-Type": "application/json"}
TRANSIENT_STATUSES = frozenset({408, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 403})
# Gateways answer these when the counterparty behind them may have acted.
GATEWAY_STATUSES = frozenset({502, 504})


class CounterpartyHttp:
    """Sends requests to one counterparty's endpoint through the shared client.

    A failure before the request left (connection refused, connect or pool timeout) and a 5xx,
    408 or 429 answer raise TransientBankError. A failure after the request left (read timeout,
    dropped connection) and a 502/504 raise UnknownOutcome for calls that may move money
    (`moves_money`), and TransientBankError for read-only calls, which can always be repeated.
    401/403 raise CredentialsRefused. Other answers are returned for the channel to interpret:
    `refuse` turns a 4xx into PermanentBankError, or for a call that moves money only an explicit
    refusal (`refuse_money`: a 409 or duplicate code, a 404, a code-less answer are unknown).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        counterparty: str,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.counterparty = counterparty
        self.timeout = timeout

    async def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        moves_money: bool = False,
    ) -> httpx.Response:
        request_headers = dict(headers or {})
        if json_body is not None:
            content = orjson.dumps(json_body)
            request_headers.setdefault("Content-Type", "application/json")
        kwargs: dict[str, Any] = {"content": content, "headers": request_headers}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        try:
            response = await self.client.request(method, self.base_url + path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientBankError(
                f"{self.counterparty}: could not reach the counterparty ({type(exc).__name__})"
            ) from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            if moves_money:
                raise UnknownOutcome(
                    f"{self.counterparty}: no answer after sending ({type(exc).__name__})"
                ) from exc
            raise TransientBankError(
                f"{self.counterparty}: no answer ({type(exc).__name__})"
            ) from exc
        status = response.status_code
        if moves_money and status in GATEWAY_STATUSES:
            raise UnknownOutcome(f"{self.counterparty}: HTTP {status} from a gateway after sending")
        if status in CREDENTIAL_STATUSES:
            raise CredentialsRefused(
                f"{self.counterparty}: our credentials were refused (HTTP {status})"
            )
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise TransientBankError(f"{self.counterparty}: HTTP {status} from the counterparty")
        return response

    @staticmethod
    def error_code(response: httpx.Response) -> str:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return body["code"]
        return f"HTTP_{response.status_code}"

    def refuse(self, response: httpx.Response) -> PermanentBankError:
        code = self.error_code(response)
        return PermanentBankError(code, f"{self.counterparty}: request refused ({code})")

    def refuse_money(self, response: httpx.Response) -> PermanentBankError | UnknownOutcome:
        """A refusal of a request that moves money: final only if it names why; a duplicate (the
        counterparty holds it), a 404 (a resend it cannot place) or a bare status is unknown."""
        code = self.error_code(response)
        if (
            response.status_code in (404, 409)
            or code in DUPLICATE_CODES
            or code.startswith("HTTP_")
        ):
            return UnknownOutcome(f"{self.counterparty}: refused without a verdict ({code[:40]})")
        return PermanentBankError(code, f"{self.counterparty}: request refused ({code[:40]})")

    def answer(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object a counterparty answered to a request that moves money; any other body
        means it may have acted without our knowing what it took (UnknownOutcome)."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise UnknownOutcome(
                f"{self.counterparty}: unreadable answer after sending (HTTP {response.status_code})"
            )
        return body

    def json(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise TransientBankError(
                f"{self.counterparty}: unreadable answer (HTTP {response.status_code})"
            ) from exc


def parse_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime (naive values are taken as UTC)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 moved across midnight UTC
        raise ValueError(f"timestamp out of range: {value!r}") from None
