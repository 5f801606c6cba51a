"""The three services as real HTTP servers for fuzzing and security tests: each app served by
uvicorn on a free port, on a fresh PostgreSQL database and the real Kafka with a topic prefix of
its own (or on the embedded default)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.intake import bootstrap as intake_bootstrap
from services.intake.settings import IntakeSettings
from services.payout import bootstrap as payout_bootstrap
from services.payout.settings import PayoutSettings
from services.reporting import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from shared.migrations import upgrade_to_head_async
from shared.settings import ServiceSettings
from tests.support import tokens
from tests.support.sandbox import free_port

# Every scope each service knows: the fuzzers call with all of them.
SCOPES: dict[str, frozenset[str]] = {
    "intake": frozenset(
        {
            "claims:write",
            "claims:read",
            "decisions:write",
            "roll:write",
            "payment-methods:write",
            "beneficiaries:read",
            "pii:read",
            "audit:read",
        }
    ),
    "payout": frozenset({"payout:operate", "payout:read", "pii:read"}),
    "reporting": frozenset({"reports:read", "reports:write"}),
}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "payout": PayoutSettings,
    "reporting": ReportingSettings,
}
FACTORIES: dict[str, Callable[[Any], FastAPI]] = {
    "intake": intake_bootstrap.create_app,
    "payout": payout_bootstrap.create_app,
    "reporting": reporting_bootstrap.create_app,
}
MIGRATIONS: dict[str, Path] = {
    "intake": intake_bootstrap.MIGRATIONS,
    "payout": payout_bootstrap.MIGRATIONS,
    "reporting": reporting_bootstrap.MIGRATIONS,
}


def service_settings(
    service: str, *, database_url: str | None, kafka: str | None, data_dir: Path, **overrides: Any
) -> ServiceSettings:
    """Settings for a test server: its own topic prefix, the tests' token keys, no background
    scheduling, and (payout) a bank base URL that answers nothing unless given."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka,
        "data_dir": data_dir,
        "topic_partitions": 1,
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        **tokens.trust(service),
    }
    if service == "payout":
        values.update(
            scheduler_enabled=False,
            bank_base_url=f"http://127.0.0.1:{free_port()}",
            bank_read_timeout_seconds=1.0,
            bank_connect_timeout_seconds=0.5,
        )
    values.update(overrides)
    return SETTINGS[service](**values)


def token(
    service: str,
    scopes: frozenset[str] | set[str] | None = None,
    *,
    client_id: str = "fuzzer",
    **kwargs: Any,
) -> str:
    return tokens.token(set(SCOPES[service] if scopes is None else scopes), sub=client_id, **kwargs)


@dataclass
class ServiceServer:
    """One service's app served by uvicorn on 127.0.0.1:<free port> as a task of the running
    loop. Synchronous clients (schemathesis, hypothesis) call it from a worker thread
    (`asyncio.to_thread`) so that the loop keeps serving."""

    service: str
    settings: ServiceSettings
    port: int = 0
    app: FastAPI | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Any:
        assert self.app is not None
        return self.app.state.runtime

    def headers(self, scopes: frozenset[str] | set[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(self.service, scopes)}"}

    async def start(self, timeout: float = 30.0) -> ServiceServer:
        await upgrade_to_head_async(MIGRATIONS[self.service], self.settings.resolved_database_url())
        self.app = FACTORIES[self.service](self.settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.ensure_future(self._server.serve())
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._task.done():
                raise RuntimeError(
                    f"{self.service} server stopped at startup"
                ) from self._task.exception()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.service} server did not start in {timeout} s")
            await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(asyncio.gather(self._task, return_exceptions=True), 30)

    def client(
        self, scopes: frozenset[str] | set[str] | None = None, **kwargs: Any
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers(scopes), timeout=30, **kwargs
        )
