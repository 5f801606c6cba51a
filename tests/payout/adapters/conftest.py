"""The bank adapters against the sandbox running as a real server, with a real webhook receiver
that checks every callback with the adapter's own `parse_callback`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from services.payout.adapters.banks import BankChannelRegistry
from tests.payout.adapters.adapter_helpers import VCB, VCB_SECRET, adapter_settings
from tests.support.sandbox import (
    CallbackRecorder,
    SandboxAdmin,
    SandboxProcess,
    WebhookReceiver,
    free_port,
)


@pytest.fixture(scope="session")
def receiver_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sandbox_process(receiver_port: int) -> Iterator[SandboxProcess]:
    process = SandboxProcess(
        callback_base=f"http://127.0.0.1:{receiver_port}",
        extra_args=[
            "--webhook-delay-ms",
            "10",
            "--webhook-retry-base-ms",
            "20",
            "--webhook-max-attempts",
            "6",
            "--webhook-secrets",
            f'{{"{VCB}": "{VCB_SECRET}"}}',
        ],
    )
    with process:
        yield process


@pytest_asyncio.fixture(scope="session")
async def registry(sandbox_process: SandboxProcess) -> AsyncIterator[BankChannelRegistry]:
    async with BankChannelRegistry(adapter_settings(sandbox_process.url)) as built:
        yield built


@pytest_asyncio.fixture(scope="session")
async def recorder(
    registry: BankChannelRegistry, receiver_port: int
) -> AsyncIterator[CallbackRecorder]:
    def parse(kind: str, counterparty: str, headers: Mapping[str, str], body: bytes):
        return registry.channel(counterparty).parse_callback(headers, body, datetime.now(UTC))

    recorder = CallbackRecorder(parse)
    receiver = await WebhookReceiver(recorder, port=receiver_port).start()
    yield recorder
    await receiver.stop()


@pytest_asyncio.fixture(scope="session")
async def admin(sandbox_process: SandboxProcess) -> AsyncIterator[SandboxAdmin]:
    client = SandboxAdmin(sandbox_process.url)
    yield client
    await client.aclose()


@dataclass
class Sandbox:
    url: str
    admin: SandboxAdmin
    registry: BankChannelRegistry
    callbacks: CallbackRecorder


@pytest_asyncio.fixture
async def sandbox(
    sandbox_process: SandboxProcess,
    admin: SandboxAdmin,
    registry: BankChannelRegistry,
    recorder: CallbackRecorder,
) -> AsyncIterator[Sandbox]:
    """A clean sandbox (no accounts, transfers or faults) and an empty callback record."""
    await admin.reset()
    recorder.clear()
    yield Sandbox(sandbox_process.url, admin, registry, recorder)
    await admin.set_faults()
