"""Wiring of the reporting service: app factory, workers and command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path

from fastapi import FastAPI

from services.reporting.adapters.orm import metadata
from services.reporting.api import dashboard
from services.reporting.api.endpoints import router
from services.reporting.consumers.projections import run_projections
from services.reporting.settings import ReportingSettings
from shared.app import build_app
from shared.auth import verifier_for
from shared.migrations import upgrade_to_head_async
from shared.observability import configure_logging
from shared.runtime import Runtime, run_relay, service_main

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    app = build_app(
        settings,
        metadata,
        title="Reporting: progress toward the cashless targets",
        description=(
            "Read models fed by intake's and payout's events: people paid and paid without cash, amounts, "
            "claims and decisions per period, area, scheme, agency and channel; targets and their "
            "progress; CSV and XLSX exports; the dashboard at `/dashboard`."
        ),
        routers=[router, dashboard.router],
    )
    dashboard.mount_static(app)
    # Tokens are checked with public keys only: reporting holds no key that can sign.
    app.state.token_verifier = verifier_for(settings)
    return app


def workers(runtime: Runtime, stop: asyncio.Event) -> Sequence[Awaitable[None]]:
    return [run_relay(runtime, stop), run_projections(runtime, stop)]


async def _rebuild(settings: ReportingSettings, timeout: float | None) -> None:
    from services.reporting.consumers.rebuild import rebuild

    await upgrade_to_head_async(MIGRATIONS, settings.resolved_database_url())
    runtime = await Runtime.open(settings, metadata)
    try:
        result = await rebuild(runtime, timeout=timeout)
    finally:
        await runtime.close()
    print(
        f"rebuilt generation {result.generation}: {result.events_applied} events applied from "
        f"{result.records_read} records in {result.seconds} s",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["rebuild"]:
        parser = argparse.ArgumentParser(
            prog="python -m services.reporting rebuild",
            description="Empty the read models and replay every topic from the beginning, then switch.",
        )
        parser.add_argument(
            "--timeout", type=float, default=None, help="give up after this many seconds"
        )
        options = parser.parse_args(args[1:])
        settings = ReportingSettings()
        configure_logging(settings.log_level, "reporting")
        asyncio.run(_rebuild(settings, options.timeout))
        return
    if args[:1] in (["-h"], ["--help"]):
        print(
            "rebuild: python -m services.reporting rebuild [--timeout S] replays the topics into fresh read "
            "models\n"
        )
    service_main(
        args,
        name="reporting",
        settings_factory=ReportingSettings,
        migrations=MIGRATIONS,
        metadata=metadata,
        app_path="services.reporting.bootstrap:create_app",
        workers=workers,
    )
