"""Intake's background work next to the outbox relay and the consumers: identity revalidation
passes. Any number of worker processes may run: a pass is leased, every chunk is written with
a compare-and-set of the pass's cursor, and the population registry is never called inside a
database transaction."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.adapters.population import (
    HttpPopulationRegistry,
    PopulationRegistry,
    RegistryError,
)
from services.intake.service_layer import revalidation
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.runtime import Runtime
from shared.uow import unit_of_work
from shared.waiting import sleep_or_stop

log = logging.getLogger(__name__)
ACTOR = "intake-revalidation"


class RevalidationSettings(BaseSettings):
    """Identity revalidation's settings, `INTAKE_*` like the service's: the population registry
    (the sandbox in development) and the pass's chunks (at most 1,000 persons a request)."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    population_registry_url: str = "http://127.0.0.1:8010"
    population_timeout_seconds: float = Field(10.0, gt=0)
    population_max_attempts: int = Field(5, ge=1)
    revalidation_chunk_size: int = Field(1_000, ge=1, le=1_000)
    # A pass a worker holds; another takes it over once this has passed without progress.
    revalidation_lease_seconds: float = Field(60.0, gt=0)
    revalidation_idle_seconds: float = Field(1.0, gt=0)


class RevalidationWorker:
    def __init__(
        self, runtime: Runtime, registry: PopulationRegistry, settings: RevalidationSettings
    ) -> None:
        self.runtime = runtime
        self.registry = registry
        self.chunk_size = max(1, settings.revalidation_chunk_size)
        self.lease_seconds = settings.revalidation_lease_seconds
        self.idle_seconds = settings.revalidation_idle_seconds
        self.passes_completed = 0
        self.chunks_recorded = 0

    def transaction(self) -> AbstractAsyncContextManager[IntakeUnitOfWork]:
        return unit_of_work(self.runtime.engine, self.runtime.outbox, ACTOR, kind=IntakeUnitOfWork)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.idle_seconds
        while not stop.is_set():
            try:
                busy = await self.step(stop)
                backoff = self.idle_seconds
            except Exception as exc:
                log.warning(
                    "revalidation step failed",
                    exc_info=exc,
                    extra={"fields": {"error": type(exc).__name__}},
                )
                busy = False
                backoff = min(max(backoff * 2, 0.5), 30.0)
            if not busy:
                await sleep_or_stop(stop, backoff)

    async def step(self, stop: asyncio.Event | None = None) -> bool:
        """Take a pending pass and work it to its end (or until `stop`); False when none waits."""
        async with self.transaction() as uow:
            current = await revalidation.claim_pass(uow, self.lease_seconds)
        if current is None:
            return False
        while stop is None or not stop.is_set():
            async with self.runtime.engine.connect() as conn:
                persons = await revalidation.next_persons(conn, current, self.chunk_size)
            if not persons:
                async with self.transaction() as uow:
                    await revalidation.complete_pass(uow, current)
                self.passes_completed += 1
                log.info(
                    "revalidation pass completed",
                    extra={"fields": {"period": current.period, "checked": current.checked}},
                )
                return True
            # Outside any transaction: the registry may take its time, or not answer at all.
            try:
                answers = await self.registry.check([p.query for p in persons])
            except RegistryError:
                async with self.transaction() as uow:
                    await revalidation.release_pass(uow, current)
                raise
            async with self.transaction() as uow:
                current = await revalidation.record_chunk(
                    uow, current, persons, answers, self.lease_seconds
                )
            self.chunks_recorded += 1
        return True


def http_registry(settings: RevalidationSettings) -> HttpPopulationRegistry:
    return HttpPopulationRegistry(
        settings.population_registry_url,
        timeout_seconds=settings.population_timeout_seconds,
        max_attempts=settings.population_max_attempts,
    )


async def run_revalidation(
    runtime: Runtime,
    stop: asyncio.Event,
    registry: PopulationRegistry | None = None,
    settings: RevalidationSettings | None = None,
) -> None:
    settings = settings or RevalidationSettings()
    own = registry is None
    used = registry or http_registry(settings)
    try:
        await RevalidationWorker(runtime, used, settings).run(stop)
    finally:
        if own and isinstance(used, HttpPopulationRegistry):
            await used.aclose()
