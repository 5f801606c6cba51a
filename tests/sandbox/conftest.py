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
from lxml import etree

from services.sandbox.testing import (
    CallbackRecorder,
    SandboxAdmin,
    SandboxProcess,
    WebhookReceiver,
    free_port,
)
from shared.webhook_signing import COUNTERPARTY_HEADER, dev_secret, header, verify

BATCH_SIZE = 100  # callbacks group at most this many events per delivery in these tests


def parse_callback(kind: str, counterparty: str, headers: Mapping[str, str], body: bytes):
    if header(headers, COUNTERPARTY_HEADER) != counterparty:
        raise ValueError("wrong_counterparty")
    verify(dev_secret(counterparty), headers, body, datetime.now(UTC))
    if kind == "iso":
        root = etree.fromstring(body)
        ns = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"}
        events = [
            {
                "event_id": entry.findtext("c:NtryRef", namespaces=ns),
                "end_to_end_id": entry.findtext("c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId", namespaces=ns),
                "amount": int(entry.findtext("c:Amt", namespaces=ns)),
                "reason_code": entry.findtext("c:NtryDtls/c:TxDtls/c:RtrInf/c:Rsn/c:Cd", namespaces=ns),
                "type": entry.findtext("c:BkTxCd/c:Prtry/c:Cd", namespaces=ns),
            }
            for entry in root.iterfind("c:BkToCstmrDbtCdtNtfctn/c:Ntfctn/c:Ntry", ns)
        ]
        return root.findtext("c:BkToCstmrDbtCdtNtfctn/c:GrpHdr/c:MsgId", namespaces=ns), events
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
            "--webhook-delay-ms", "20",
            "--webhook-batch-size", str(BATCH_SIZE),
            "--webhook-retry-base-ms", "20",
            "--webhook-max-attempts", "4",
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
    yield Sandbox(http, admin, recorder)
    await admin.set_faults()
