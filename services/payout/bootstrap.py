"""Wiring of the payout service: app factory, workers and command line."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Sequence

from fastapi import FastAPI

from services.payout.adapters.orm import metadata
from services.payout.settings import PayoutSettings
from shared.app import build_app
from shared.runtime import Runtime, run_relay, service_main

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: PayoutSettings | None = None) -> FastAPI:
    settings = settings or PayoutSettings()
    return build_app(
        settings,
        metadata,
        title="Payout: monthly cycles, bank adapters, callbacks and reconciliation",
        description="Payout: monthly cycles, bank adapters, callbacks and reconciliation.",
        routers=[],
    )


def workers(runtime: Runtime, stop: asyncio.Event) -> Sequence[Awaitable[None]]:
    return [run_relay(runtime, stop)]


def main(argv: Sequence[str] | None = None) -> None:
    service_main(
        argv,
        name="payout",
        settings_factory=PayoutSettings,
        migrations=MIGRATIONS,
        metadata=metadata,
        app_path="services.payout.bootstrap:create_app",
        workers=workers,
    )
