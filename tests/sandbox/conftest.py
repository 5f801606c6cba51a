"""The sandbox as a real server, spoken to over plain HTTP; its callbacks land on a real
receiver that checks signatures with the shared helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import pytest_asyncio

from shared.webhook_signing import COUNTERPARTY_HEADER, dev_secret, header, verify
from tests.sandbox.iso_reading import iso_outcomes
from tests.support.sandbox import (
    CallbackRecorder,
    SandboxAdmin,
    SandboxProcess,
    WebhookReceiver,
    free_port,
)

BATCH_SIZE = 100  # callbacks group at most this many events per delivery in these tests
ISO_BODIES: list[bytes] = []  # every ISO 20022 document the file bank called back with, as sent


def parse_callback(kind: str, counterparty: str, headers: Mapping[str, str], body: bytes):
    if header(headers, COUNTERPARTY_HEADER) != counterparty:
        raise ValueError("wrong_counterparty")
    verify(dev_secret(counterparty), headers, body, datetime.now(UTC))
    if kind == "iso":
        ISO_BODIES.append(body)
        return iso_outcomes(body)
    body_json = orjson.loads(body)
    return body_json["delivery_id"], body_json["events"]


@pytest.fixture(scope="session")
def receiver_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sandbox_process(receiver_port: int) -> Iterator[SandboxProcess]:
    process = SandboxProcess(
        callback_base=f"http://127.0.0.1:{receiver_port}",
        extra_args=[
            "--webhook-delay-ms",
            "20",
            "--webhook-batch-size",
            str(BATCH_SIZE),
            "--webhook-retry-base-ms",
            "20",
            "--webhook-max-attempts",
            "4",
        ],
    )
    with process:
        yield process


@pytest_asyncio.fixture(scope="session")
async def recorder(receiver_port: int) -> AsyncIterator[CallbackRecorder]:
    recorder = CallbackRecorder(parse_callback)
    receiver = await WebhookReceiver(recorder, port=receiver_port).start()
    yield recorder
    await receiver.stop()


@pytest_asyncio.fixture(scope="session")
async def http(sandbox_process: SandboxProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_process.url, timeout=10) as client:
        yield client


@dataclass
class Sandbox:
    http: httpx.AsyncClient
    admin: SandboxAdmin
    callbacks: CallbackRecorder


@pytest_asyncio.fixture
async def sandbox(
    sandbox_process: SandboxProcess, http: httpx.AsyncClient, recorder: CallbackRecorder
) -> AsyncIterator[Sandbox]:
    admin = SandboxAdmin(sandbox_process.url, http)
    await admin.reset()
    recorder.clear()
    ISO_BODIES.clear()
    yield Sandbox(http, admin, recorder)
    await admin.set_faults()
