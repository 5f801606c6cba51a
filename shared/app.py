"""The app factory all three services share: lifespan-built runtime, common plumbing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData

from shared.runtime import Runtime
from shared.settings import ServiceSettings
from shared.web import install_common

StartupHook = Callable[[FastAPI, Runtime], Awaitable[None]]


def build_app(
    settings: ServiceSettings,
    metadata: MetaData,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    on_startup: StartupHook | None = None,
    on_shutdown: StartupHook | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, metadata)
        app.state.runtime = runtime
        app.state.settings = settings
        app.state.engine = runtime.engine
        app.state.bus = runtime.bus
        if on_startup:
            await on_startup(app, runtime)
        try:
            yield
        finally:
            if on_shutdown:
                await on_shutdown(app, runtime)
            await runtime.close()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.metrics_registry = install_common(
        app, settings.service_name, settings.console_origins
    )
    for router in routers:
        app.include_router(router)
    return app
