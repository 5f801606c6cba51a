"""Wiring of the payout service: app factory, workers and command line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from pathlib import Path

from fastapi import FastAPI

from services.payout import metrics as payout_metrics
from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.adapters.orm import metadata
from services.payout.api.cash import router as cash_router
from services.payout.api.endpoints import router as api_router
from services.payout.api.methods import router as methods_router
from services.payout.api.webhooks import router as webhook_router
from services.payout.consumers.intake_view import intake_view_consumer
from services.payout.consumers.revalidation import revalidation_consumer
from services.payout.settings import PayoutSettings
from services.payout.workers import PayoutWorkers
from shared.app import build_app
from shared.auth import verifier_for
from shared.runtime import Runtime, run_relay, service_main

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: PayoutSettings | None = None) -> FastAPI:
    settings = settings or PayoutSettings()

    async def startup(app: FastAPI, runtime: Runtime) -> None:
        app.state.channels = BankChannelRegistry(settings.bank_channels())
        app.state.refresh_metrics = lambda: payout_metrics.refresh(runtime.session_factory)

    async def shutdown(app: FastAPI, runtime: Runtime) -> None:
        await app.state.channels.aclose()

    app = build_app(
        settings,
        metadata,
        title="Payout: monthly cycles, bank adapters, callbacks and reconciliation",
        description="Payout: monthly cycles, bank adapters, callbacks and reconciliation.",
        routers=[api_router, methods_router, cash_router, webhook_router],
        on_startup=startup,
        on_shutdown=shutdown,
    )
    # Tokens are checked with public keys only: payout holds no key that can sign.
    app.state.token_verifier = verifier_for(settings)
    return app


def workers(runtime: Runtime, stop: asyncio.Event) -> Sequence[Awaitable[None]]:
    settings = runtime.settings
    assert isinstance(settings, PayoutSettings)
    jobs: list[Awaitable[None]] = []
    if "relay" in settings.worker_roles:
        jobs.append(run_relay(runtime, stop))
    jobs.append(_payout_work(runtime, settings, stop))
    return jobs


async def _payout_work(runtime: Runtime, settings: PayoutSettings, stop: asyncio.Event) -> None:
    channels = BankChannelRegistry(settings.bank_channels())
    work = PayoutWorkers(settings, runtime.session_factory, runtime.outbox, channels)
    roles = set(settings.worker_roles)
    jobs = []
    if "consumer" in roles:
        jobs.append(intake_view_consumer(runtime, settings.consumer_batch_size).run(stop))
        jobs.append(revalidation_consumer(runtime, settings.consumer_batch_size).run(stop))
    if "verification" in roles:
        jobs.append(work.run_verification(stop))
    if "submission" in roles:
        jobs.append(work.run_submission(stop))
    if "sweeper" in roles:
        jobs.append(work.run_sweeper(stop))
    if "scheduler" in roles and settings.scheduler_enabled:
        jobs.append(work.run_scheduler(stop))
    try:
        await asyncio.gather(*jobs)
    finally:
        await channels.aclose()


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
