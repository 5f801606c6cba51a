"""Wiring of the reporting service: app factory, workers and command line."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Sequence

from fastapi import FastAPI

from services.reporting.adapters.orm import metadata
from services.reporting.settings import ReportingSettings
from shared.app import build_app
from shared.runtime import Runtime, run_relay, service_main

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    return build_app(
        settings,
        metadata,
        title="Reporting: progress toward the cashless targets",
        description="Reporting: progress toward the cashless targets.",
        routers=[],
    )


def workers(runtime: Runtime, stop: asyncio.Event) -> Sequence[Awaitable[None]]:
    return [run_relay(runtime, stop)]


def main(argv: Sequence[str] | None = None) -> None:
    service_main(
        argv,
        name="reporting",
        settings_factory=ReportingSettings,
        migrations=MIGRATIONS,
        metadata=metadata,
        app_path="services.reporting.bootstrap:create_app",
        workers=workers,
    )
