"""Wiring of the intake service: app factory, workers and command line."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Sequence

from fastapi import FastAPI

from services.intake.adapters.orm import metadata
from services.intake.settings import IntakeSettings
from shared.app import build_app
from shared.runtime import Runtime, run_relay, service_main

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    return build_app(
        settings,
        metadata,
        title="Intake: claims, decisions, the beneficiary roll and payment methods",
        description="Intake: claims, decisions, the beneficiary roll and payment methods.",
        routers=[],
    )


def workers(runtime: Runtime, stop: asyncio.Event) -> Sequence[Awaitable[None]]:
    return [run_relay(runtime, stop)]


def main(argv: Sequence[str] | None = None) -> None:
    service_main(
        argv,
        name="intake",
        settings_factory=IntakeSettings,
        migrations=MIGRATIONS,
        metadata=metadata,
        app_path="services.intake.bootstrap:create_app",
        workers=workers,
    )
