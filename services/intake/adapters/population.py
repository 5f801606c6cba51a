"""The population registry (the National Population Database's identity check, played by the
sandbox): batch checks of CCCD, full name and date of birth over HTTP.

Calls are retried with backoff on what may pass (no connection, a timeout, a 5xx, 408 or 429);
a check changes nothing at the registry, so a repeat is always safe. Errors and logs name the
status or the kind of failure, never a person's data."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import httpx
import orjson

from services.intake.domain.revalidation import RegistryAnswer

log = logging.getLogger(__name__)

MAX_PERSONS_PER_REQUEST = 1_000
CHECK_PATH = "/population/identity-checks"
RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class IdentityQuery:
    national_id: str
    full_name: str
    date_of_birth: date | None = None


class RegistryError(Exception):
    """The registry could not answer (after the retries), or answered something unusable."""


class RegistryUnavailable(RegistryError):
    """No answer after every attempt: try the chunk again later."""


class RegistryRefused(RegistryError):
    """A 4xx or an answer that does not fit the question: retrying the same request won't help."""


class PopulationRegistry(Protocol):
    async def check(self, persons: Sequence[IdentityQuery]) -> list[RegistryAnswer]: ...


class HttpPopulationRegistry:
    """The registry over HTTP: at most 1,000 persons a request, answers in the order asked."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_base_seconds: float = 0.2,
        backoff_max_seconds: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout_seconds)
        self.timeout = httpx.Timeout(timeout_seconds)
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base_seconds
        self.backoff_max = backoff_max_seconds
        self.requests_made = 0
        self.retries = 0

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def check(self, persons: Sequence[IdentityQuery]) -> list[RegistryAnswer]:
        answers: list[RegistryAnswer] = []
        for start in range(0, len(persons), MAX_PERSONS_PER_REQUEST):
            answers.extend(await self._check(persons[start : start + MAX_PERSONS_PER_REQUEST]))
        return answers

    async def _check(self, persons: Sequence[IdentityQuery]) -> list[RegistryAnswer]:
        body = orjson.dumps(
            {
                "persons": [
                    {
                        "national_id": p.national_id,
                        "full_name": p.full_name,
                        **(
                            {"date_of_birth": p.date_of_birth.isoformat()}
                            if p.date_of_birth
                            else {}
                        ),
                    }
                    for p in persons
                ]
            }
        )
        delay = self.backoff_base
        for attempt in range(1, self.max_attempts + 1):
            failure = await self._attempt(body)
            if isinstance(failure, httpx.Response):
                return _answers(failure, persons)
            if attempt == self.max_attempts:
                raise RegistryUnavailable(
                    f"population registry: no answer after {attempt} attempts ({failure})"
                )
            self.retries += 1
            log.info(
                "population registry retry",
                extra={"fields": {"attempt": attempt, "failure": failure}},
            )
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.backoff_max)
        raise AssertionError("unreachable")

    async def _attempt(self, body: bytes) -> httpx.Response | str:
        """The answer to keep, or why this attempt may be repeated."""
        self.requests_made += 1
        try:
            response = await self.client.post(
                self.base_url + CHECK_PATH,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return type(exc).__name__
        status = response.status_code
        if status >= 500 or status in RETRYABLE_STATUSES:
            return f"HTTP {status}"
        if status != 200:
            raise RegistryRefused(f"population registry: request refused (HTTP {status})")
        return response


def _answers(response: httpx.Response, persons: Sequence[IdentityQuery]) -> list[RegistryAnswer]:
    try:
        results = orjson.loads(response.content)["results"]
        if not isinstance(results, list) or len(results) != len(persons):
            raise RegistryRefused("population registry: answers do not match the question")
        answers = []
        for asked, result in zip(persons, results, strict=True):
            if result.get("national_id") != asked.national_id:
                raise RegistryRefused("population registry: answers out of order")
            answers.append(_answer(result))
        return answers
    except RegistryRefused:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RegistryRefused(
            f"population registry: unreadable answer ({type(exc).__name__})"
        ) from None


def _answer(result: dict[str, Any]) -> RegistryAnswer:
    found = bool(result["found"])
    died = result.get("date_of_death")
    return RegistryAnswer(
        found=found,
        deceased=found and result.get("status") == "DECEASED",
        date_of_death=date.fromisoformat(died) if isinstance(died, str) else None,
        name_matches=result.get("name_matches"),
        date_of_birth_matches=result.get("date_of_birth_matches"),
    )
