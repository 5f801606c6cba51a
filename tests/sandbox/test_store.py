"""The sandbox keeps what grows with a payout cycle on disk: the accounts and transfers of a
cycle, and the callbacks a slow receiver leaves waiting, take little memory, and what went to
the store comes back as it went in."""

from __future__ import annotations

import asyncio
import gc
import re
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from services.sandbox import webhooks
from services.sandbox.config import SandboxSettings
from services.sandbox.simulator import Sandbox
from services.sandbox.state import IsoMessage, ItemIn

VCB, AGRIBANK = "970436", "970405"
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Đức Cường", "Phạm Thị Dung"]
# A pain.001 that fails validation but whose MsgId can be read: refused with a pain.002.
UNREADABLE_FILE = (
    b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn>'
    b"<GrpHdr><MsgId>MSG-0</MsgId></GrpHdr></CstmrCdtTrfInitn></Document>"
)


class HeldReceiver:
    """The payout service's callback endpoint for an in-process sandbox: it holds every
    delivery until `open` is set, then takes it and keeps what it was sent."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.bodies: list[tuple[str, bytes]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await self.open.wait()
        self.bodies.append((request.url.path, request.content))
        return httpx.Response(200)

    def events(self) -> dict[str, list[dict]]:
        """The JSON events of each route, in the order received."""
        out: dict[str, list[dict]] = {}
        for path, body in self.bodies:
            if "/iso/" not in path:
                out.setdefault(path, []).extend(orjson.loads(body)["events"])
        return out

    def iso_documents(self) -> list[bytes]:
        """The ISO 20022 documents, without what differs from one run to another (the delivery
        ids and the instants of the run)."""
        out = []
        for path, body in self.bodies:
            if "/iso/" in path:
                body = re.sub(rb"<(CreDtTm|DtTm|Dt)>[^<]*</\1>", b"", body)
                out.append(re.sub(rb"<(MsgId|Id)>CAMT[^<]*</\1>", b"", body))
        return out


def in_process(data_dir: Path, receiver: HeldReceiver) -> Sandbox:
    sandbox = Sandbox(SandboxSettings(data_dir=data_dir, webhook_delay_ms=0))
    sandbox.webhooks.client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    return sandbox


async def until_idle(sandbox: Sandbox, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not (sandbox.webhooks.idle and sandbox.scheduled == 0):
            await asyncio.sleep(0.01)


def transfer(n: int, bin_: str = VCB) -> ItemIn:
    return ItemIn(f"PAY-{n}-1", 1_500_000 + n % 997, "VND", f"{1000000000 + n}", bin_)


@pytest.fixture
def data_dir(tmp_path: Path):
    yield tmp_path
    # Reset deletes the store's files.
    assert list(tmp_path.rglob("sandbox-*")) == []


class TestFlatMemory:
    async def test_a_cycle_of_accounts_transfers_and_waiting_callbacks_stays_on_disk(
        self, data_dir
    ):
        # 100,000 accounts and transfers, their callbacks held by a receiver that takes none
        # until the end: all in memory they peaked at 100 MB; with the store at 16 MB (what
        # waits in memory, and the deliveries under way).
        n, batch = 100_000, 500
        receiver = HeldReceiver()
        sandbox = in_process(data_dir, receiver)
        state = sandbox.state
        now = datetime.now(UTC)
        gc.collect()
        tracemalloc.start()
        try:
            for start in range(0, n, 50_000):
                state.seed_accounts(
                    (VCB, f"{1000000000 + i}", NAMES[i % 4], "ACTIVE")
                    for i in range(start, start + 50_000)
                )
            for start in range(0, n, batch):
                items = [transfer(i) for i in range(start, start + batch)]
                intake = state.take(VCB, "napas", ("banks", VCB, f"B{start}"), items, now)
                sandbox.webhooks.publish(state.settle_bank(intake.new, now))
                await asyncio.sleep(0)  # the loop's turn, as between two requests
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 40 * 1024 * 1024, f"{peak / 2**20:.1f} MB"

        ledger = state.ledger()
        assert (ledger["credits"], ledger["transfers"]) == (n, n)
        assert ledger["total_credited"] == sum(1_500_000 + i % 997 for i in range(n))
        found = state.transfer_for(VCB, "PAY-4242-1")
        assert found is not None and state.bank_status(found)["status"] == "SETTLED"
        receiver.open.set()
        await until_idle(sandbox)
        events = receiver.events()[f"/v1/webhooks/banks/{VCB}"]
        assert [e["end_to_end_id"] for e in events] == [f"PAY-{i}-1" for i in range(n)]
        sandbox.reset()


class TestSpilledCallbacks:
    async def test_callbacks_spilled_to_the_store_arrive_as_from_memory(
        self, data_dir, monkeypatch
    ):
        kept = await self.held_then_taken(data_dir / "kept", 100_000, monkeypatch)
        spilled = await self.held_then_taken(data_dir / "spilled", 5, monkeypatch)
        assert {path: len(events) for path, events in kept.events().items()} == {
            f"/v1/webhooks/banks/{VCB}": 60,
            "/v1/webhooks/vnpost": 10,
        }
        assert spilled.events() == kept.events()
        # The pain.002 of the file refused unread, the camt.054 booking the other two.
        assert len(kept.iso_documents()) == 2
        assert spilled.iso_documents() == kept.iso_documents()

    async def held_then_taken(
        self, data_dir: Path, memory_weight: int, monkeypatch: pytest.MonkeyPatch
    ) -> HeldReceiver:
        """Bank transfers, cash items and files whose callbacks wait (all in memory, or all
        but `memory_weight` transactions of a route in the store), then are taken."""
        monkeypatch.setattr(webhooks, "MEMORY_WEIGHT", memory_weight)
        receiver = HeldReceiver()
        sandbox = in_process(data_dir, receiver)
        state = sandbox.state
        state.set_faults(state.faults.model_copy(update={"seed": 7}))
        state.epoch = "TEST"
        now = datetime(2031, 6, 5, 3, 0, tzinfo=UTC)
        state.seed_accounts((VCB, f"{1000000000 + i}", "Lê Văn Em", "ACTIVE") for i in range(60))
        state.seed_accounts(
            (AGRIBANK, f"{1000000000 + i}", "Lê Văn Em", "ACTIVE") for i in range(60, 90)
        )
        for start in range(0, 60, 20):
            items = [transfer(i) for i in range(start, start + 20)]
            intake = state.take(VCB, "napas", ("banks", VCB, f"B{start}"), items, now)
            sandbox.webhooks.publish(state.settle_bank(intake.new, now))
        cash = [ItemIn(f"CASH-{i}", 800_000, commune_code="09154") for i in range(10)]
        intake = state.take("VNPOST", "vnpost", ("vnpost", "L1"), cash, now, list_id="L1")
        sandbox.webhooks.publish(state.settle_cash(intake.new, now))
        sandbox.refuse_file(AGRIBANK, UNREADABLE_FILE, now)
        for start in (60, 75):
            message_id = f"MSG-{start}"
            items = [transfer(i, AGRIBANK) for i in range(start, start + 15)]
            for item in items:
                item.payment_info_id = f"PMT-{start}"
            intake = state.take(
                AGRIBANK,
                "iso",
                ("iso", AGRIBANK, message_id),
                items,
                now,
                message_id=message_id,
                debtor_account="1500201000001",
            )
            message = IsoMessage(message_id, AGRIBANK, now, len(items), 0, blocks=1)
            state.record_file(
                message, [(0, f"PMT-{start}", item.end_to_end_id, None) for item in items]
            )
            sandbox.schedule_file(message, intake.new, [])
        await asyncio.sleep(0.05)
        receiver.open.set()
        await until_idle(sandbox)
        sandbox.reset()
        return receiver
