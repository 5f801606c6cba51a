"""The sandbox's HTTP API: banks (NAPAS-style JSON and ISO 20022 files), the post office and
the control endpoints used by tests, the demo and benchmarks (one router each, in routes/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .config import SandboxSettings
from .routes import control, iso, napas, population, vnpost
from .simulator import Sandbox


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    sandbox: Sandbox = app.state.sandbox
    await sandbox.webhooks.start()
    try:
        yield
    finally:
        sandbox.reset()
        await sandbox.webhooks.stop()


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    sandbox = Sandbox(settings or SandboxSettings())
    app = FastAPI(title="Bank, post-office and population-registry sandbox", lifespan=lifespan)
    app.state.sandbox = sandbox
    for router in (napas.router, iso.router, vnpost.router, population.router, control.router):
        app.include_router(router)
    return app
