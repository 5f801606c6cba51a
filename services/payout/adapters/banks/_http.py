"""HTTP calls to a counterparty, with failures sorted into what the caller may do next."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from .base import PermanentBankError, TransientBankError, UnknownOutcome

JSON_HEADERS = {"Content-Type": "application/json"}
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class CounterpartyHttp:
    """Sends requests to one counterparty's endpoint through the shared client.

    A failure before the request left (connection refused, connect or pool timeout) and a 5xx,
    408 or 429 answer raise TransientBankError. A failure after the request left (read timeout,
    dropped connection) raises UnknownOutcome for calls that may move money (`moves_money`), and
    TransientBankError for read-only calls, which can always be repeated. Other answers are
    returned for the channel to interpret (`refuse` turns a 4xx into PermanentBankError).
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
        if response.status_code >= 500 or response.status_code in TRANSIENT_STATUSES:
            raise TransientBankError(
                f"{self.counterparty}: HTTP {response.status_code} from the counterparty"
            )
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
