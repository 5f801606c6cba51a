"""Running the sandbox for tests and benchmarks: the sandbox as a real subprocess, an async
client of its control endpoints, and a small real HTTP server that receives its callbacks."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """`python -m services.sandbox` in a subprocess, started and waited for, then stopped."""

    def __init__(
        self,
        callback_base: str,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.callback_base = callback_base
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> SandboxProcess:
        command = [
            sys.executable,
            "-m",
            "services.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--callback-base",
            self.callback_base,
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise RuntimeError(
                    f"sandbox exited with {self.process.returncode}: {error[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("sandbox did not answer in time")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SandboxAdmin:
    """The sandbox's admin endpoints."""

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=30)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._client.request(method, self.base_url + path, json=body)
        response.raise_for_status()
        return response.json()

    async def reset(self) -> None:
        await self._call("POST", "/admin/reset")

    async def seed_accounts(self, accounts: list[dict[str, str]]) -> Any:
        return await self._call("POST", "/admin/accounts", accounts)

    async def set_faults(self, **faults: Any) -> Any:
        return await self._call("PUT", "/admin/faults", faults)

    async def seed_population(self, persons: list[dict[str, Any]], chunk: int = 10_000) -> int:
        """Seed the population registry: dicts with national_id, full_name, date_of_birth
        (a date or ISO text), and optionally status (ALIVE|DECEASED) and date_of_death."""
        seeded = 0
        for start in range(0, len(persons), chunk):
            rows = [_person_row(p) for p in persons[start : start + chunk]]
            seeded += (await self._call("POST", "/admin/population", rows))["seeded"]
        return seeded

    async def population(self) -> dict[str, Any]:
        """How many persons the registry holds and how many checks it answered."""
        return await self._call("GET", "/admin/population")

    async def set_cash_outcomes(self, outcomes: Mapping[str, str]) -> Any:
        rows = [{"end_to_end_id": e2e, "outcome": outcome} for e2e, outcome in outcomes.items()]
        return await self._call("PUT", "/admin/vnpost/outcomes", rows)

    async def return_transfer(self, end_to_end_id: str, reason_code: str = "AC04") -> Any:
        return await self._call(
            "POST", f"/admin/transfers/{end_to_end_id}/return", {"reason_code": reason_code}
        )

    async def ledger(self) -> dict[str, Any]:
        return await self._call("GET", "/admin/ledger")

    async def ledger_entries(self, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return await self._call("GET", f"/admin/ledger/entries?limit={limit}&offset={offset}")

    async def webhooks(self) -> dict[str, Any]:
        return await self._call("GET", "/admin/webhooks")

    async def wait_callbacks_idle(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until every queued callback has been delivered (or given up)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.webhooks()
            if stats["idle"]:
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"callbacks still in flight: {stats}")
            await asyncio.sleep(0.02)


def _person_row(person: Mapping[str, Any]) -> dict[str, Any]:
    row = {key: value for key, value in person.items() if value is not None}
    for key in ("date_of_birth", "date_of_death"):
        if isinstance(row.get(key), date):
            row[key] = row[key].isoformat()
    return {
        key: row[key]
        for key in ("national_id", "full_name", "date_of_birth", "status", "date_of_death")
        if key in row
    }


Handler = Callable[[str, str, Mapping[str, str], bytes], Awaitable[int] | int]


class WebhookReceiver:
    """A real HTTP server on the running event loop that takes the sandbox's callbacks at
    /v1/webhooks/banks/{bin}, /v1/webhooks/iso/{bin} and /v1/webhooks/vnpost and hands each to
    `handler(kind, counterparty, headers, raw_body) -> HTTP status`."""

    def __init__(self, handler: Handler, port: int | None = None) -> None:
        self.handler = handler
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _dispatch(self, kind: str, counterparty: str, request: Request) -> Response:
        body = await request.body()
        status = self.handler(kind, counterparty, request.headers, body)
        if inspect.isawaitable(status):
            status = await status
        return Response(status_code=status)

    def _app(self) -> Starlette:
        async def bank(request: Request) -> Response:
            return await self._dispatch("banks", request.path_params["bin"], request)

        async def iso(request: Request) -> Response:
            return await self._dispatch("iso", request.path_params["bin"], request)

        async def vnpost(request: Request) -> Response:
            return await self._dispatch("vnpost", "VNPOST", request)

        return Starlette(
            routes=[
                Route("/v1/webhooks/banks/{bin}", bank, methods=["POST"]),
                Route("/v1/webhooks/iso/{bin}", iso, methods=["POST"]),
                Route("/v1/webhooks/vnpost", vnpost, methods=["POST"]),
            ]
        )

    async def start(self) -> WebhookReceiver:
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = None
        self._task = None


Parse = Callable[[str, str, Mapping[str, str], bytes], tuple[str, list[Any]]]


class CallbackRecorder:
    """A receiver handler that parses each callback with `parse(kind, counterparty, headers,
    raw_body) -> (delivery_id, outcomes)` and keeps what arrived. An exception from `parse`
    answers 401 and is kept in `rejections`; `fail_next` answers 503 that many times."""

    def __init__(self, parse: Parse) -> None:
        self.parse = parse
        self.deliveries: list[tuple[str, str, str, list[Any]]] = []
        self.by_end_to_end_id: dict[str, list[Any]] = {}
        self.rejections: list[Exception] = []
        self.fail_next = 0
        self._arrived = asyncio.Event()

    def clear(self) -> None:
        self.deliveries.clear()
        self.by_end_to_end_id.clear()
        self.rejections.clear()
        self.fail_next = 0

    async def __call__(
        self, kind: str, counterparty: str, headers: Mapping[str, str], raw_body: bytes
    ) -> int:
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503
        try:
            delivery_id, outcomes = self.parse(kind, counterparty, headers, raw_body)
        except Exception as exc:  # kept for the test to inspect
            self.rejections.append(exc)
            return 401
        self.deliveries.append((kind, counterparty, delivery_id, outcomes))
        for outcome in outcomes:
            key = outcome["end_to_end_id"] if isinstance(outcome, dict) else outcome.end_to_end_id
            self.by_end_to_end_id.setdefault(key, []).append(outcome)
        self._arrived.set()
        return 200

    async def wait_for(
        self, end_to_end_ids: Sequence[str], timeout: float = 10.0
    ) -> dict[str, list[Any]]:
        """Wait until every id has at least one outcome; return their outcomes."""
        wanted = set(end_to_end_ids)
        deadline = time.monotonic() + timeout
        while not wanted.issubset(self.by_end_to_end_id):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = len(wanted - set(self.by_end_to_end_id))
                raise TimeoutError(f"{missing} of {len(wanted)} outcomes never arrived")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                pass
        return {e2e: self.by_end_to_end_id[e2e] for e2e in end_to_end_ids}
