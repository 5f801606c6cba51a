"""Fixtures of the payout tests: one bank sandbox (a real server in a subprocess) for the
session, calling back a payout API that each test starts on the same port with a fresh
PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.payout.harness import PayoutStack, payout_settings
from tests.support.sandbox import SandboxAdmin, SandboxProcess, free_port


@pytest.fixture(scope="session")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sandbox_server(api_port: int) -> Iterator[SandboxProcess]:
    process = SandboxProcess(
        callback_base=f"http://127.0.0.1:{api_port}",
        extra_args=["--webhook-delay-ms", "20", "--webhook-retry-base-ms", "50"],
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def sandbox(sandbox_server: SandboxProcess) -> AsyncIterator[SandboxAdmin]:
    admin = SandboxAdmin(sandbox_server.url)
    await admin.reset()
    try:
        yield admin
    finally:
        await admin.reset()
        await admin.aclose()


StackFactory = Callable[..., Awaitable[PayoutStack]]


@pytest.fixture
async def payout(
    pg_database,
    kafka_bootstrap,
    tmp_path: Path,
    api_port: int,
    sandbox_server: SandboxProcess,
    sandbox: SandboxAdmin,
) -> AsyncIterator[StackFactory]:
    """`await payout(**settings)`: the payout service on PostgreSQL + Kafka, workers running."""
    stacks: list[PayoutStack] = []

    async def make(run_workers: bool = True, relay: bool = False, **overrides: Any) -> PayoutStack:
        url = await pg_database("payout")
        settings = payout_settings(
            url, kafka_bootstrap, tmp_path, api_port, sandbox_server.url, **overrides
        )
        stack = PayoutStack(settings, sandbox_server.url)
        stacks.append(stack)
        return await stack.start(run_workers=run_workers, relay=relay)

    yield make
    for stack in stacks:
        await stack.close()
