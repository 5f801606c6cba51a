"""Run the three services, their workers (and optionally the bank sandbox) in one process.

With no `*_DATABASE_URL` / `*_KAFKA_BOOTSTRAP_SERVERS` settings this is the embedded default:
SQLite files and the embedded event log. With them, the same code runs on PostgreSQL and Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import uvicorn
from fastapi import FastAPI

from services.intake import bootstrap as intake
from services.intake.settings import IntakeSettings
from services.payout import bootstrap as payout
from services.payout.settings import PayoutSettings
from services.reporting import bootstrap as reporting
from services.reporting.settings import ReportingSettings
from shared.migrations import upgrade_to_head_async
from shared.runtime import Runtime
from shared.settings import ServiceSettings, trusting_local_intake

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    name: str
    settings: ServiceSettings
    create_app: Callable[[Any], FastAPI]  # the service's own settings class
    module: ModuleType  # the service's bootstrap: MIGRATIONS, metadata, workers

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"


def default_specs() -> list[ServiceSpec]:
    """The stack is a run on one machine: development unless `*_ENVIRONMENT` says otherwise."""
    intake_settings = IntakeSettings.for_local_run()
    payout_keys = trusting_local_intake(PayoutSettings, intake_settings)
    reporting_keys = trusting_local_intake(ReportingSettings, intake_settings)
    return [
        ServiceSpec("intake", intake_settings, intake.create_app, intake),
        ServiceSpec(
            "payout", PayoutSettings.for_local_run(**payout_keys), payout.create_app, payout
        ),
        ServiceSpec(
            "reporting",
            ReportingSettings.for_local_run(**reporting_keys),
            reporting.create_app,
            reporting,
        ),
    ]


@dataclass
class Stack:
    specs: list[ServiceSpec] = field(default_factory=default_specs)
    with_sandbox: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _servers: list[uvicorn.Server] = field(default_factory=list)
    _runtimes: list[Runtime] = field(default_factory=list)

    async def start(self) -> None:
        for spec in self.specs:
            await upgrade_to_head_async(
                spec.module.MIGRATIONS, spec.settings.resolved_database_url()
            )
        for spec in self.specs:
            runtime = await Runtime.open(spec.settings, spec.module.metadata)
            self._runtimes.append(runtime)
            for work in spec.module.workers(runtime, self.stop):
                self._tasks.append(asyncio.ensure_future(work))
            config = uvicorn.Config(
                spec.create_app(spec.settings),
                host=spec.settings.host,
                port=spec.settings.port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
            server = uvicorn.Server(config)
            self._servers.append(server)
            self._tasks.append(asyncio.ensure_future(server.serve()))
        if self.with_sandbox:
            self._serve_sandbox()
        while not all(s.started for s in self._servers):
            for task in self._tasks:
                if task.done() and task.exception():
                    raise task.exception()  # type: ignore[misc]
            await asyncio.sleep(0.05)

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_settings.host}:{self.sandbox_settings.port}"

    @property
    def sandbox_settings(self):
        from services.sandbox import SandboxSettings

        payout_spec = next(s for s in self.specs if s.name == "payout")
        return SandboxSettings(callback_base=payout_spec.url)

    def _serve_sandbox(self) -> None:
        from services.sandbox import create_app as create_sandbox

        settings = self.sandbox_settings
        server = uvicorn.Server(
            uvicorn.Config(
                create_sandbox(settings),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
        )
        self._servers.append(server)
        self._tasks.append(asyncio.ensure_future(server.serve()))

    def runtime(self, name: str) -> Runtime:
        index = next(i for i, spec in enumerate(self.specs) if spec.name == name)
        return self._runtimes[index]

    def url(self, name: str) -> str:
        return next(s for s in self.specs if s.name == name).url

    async def shutdown(self) -> None:
        self.stop.set()
        for server in self._servers:
            server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 20)
        for runtime in self._runtimes:
            await runtime.close()


async def serve_forever(stack: Stack) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stack.stop.set)
    await stack.start()
    for spec in stack.specs:
        print(
            f"{spec.name:<10} {spec.url}  (OpenAPI: {spec.url}/docs, ready: {spec.url}/readyz)",
            flush=True,
        )
    if stack.with_sandbox:
        print(f"{'sandbox':<10} {stack.sandbox_url}", flush=True)
    await stack.stop.wait()
    await stack.shutdown()


def main() -> None:
    from shared.observability import configure_logging

    configure_logging("INFO")
    from shared.tracing import configure_tracing_from_env

    configure_tracing_from_env()
    import sys

    asyncio.run(serve_forever(Stack(with_sandbox="--sandbox" in sys.argv[1:])))


if __name__ == "__main__":
    main()
