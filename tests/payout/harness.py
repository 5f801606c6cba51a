"""The payout service running for real in a test: its API served by uvicorn on a free port (the
sandbox calls its webhooks there), its workers as tasks on the test's loop, PostgreSQL and Kafka
(or the embedded default), and the bank sandbox as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.adapters.orm import installments, outbox
from services.payout.bootstrap import MIGRATIONS, create_app
from services.payout.consumers.intake_view import intake_view_consumer
from services.payout.domain import model
from services.payout.settings import PayoutSettings
from services.payout.workers import PayoutWorkers
from shared.events.contracts import (
    BENEFICIARY_TOPIC,
    CONTRACT_BY_MODEL,
    BeneficiaryRegistered,
    Contract,
    EntitlementGranted,
    PaymentMethodChanged,
    Representative,
    Schedule,
)
from shared.events.envelope import CloudEvent
from shared.inbox import ConsumerRunner
from shared.messaging.ports import OutgoingRecord, ReceivedRecord
from shared.migrations import upgrade_to_head_async
from shared.runtime import Runtime, run_relay
from tests.support import tokens
from tests.support.sandbox import SandboxAdmin
from tests.support.waiting import wait_until

VCB = "970436"  # Vietcombank: NAPAS-style JSON
BIDV = "970418"  # BIDV: NAPAS-style JSON
AGRIBANK = "970405"  # ISO 20022 file bank in the sandbox's default configuration
COMMUNE = "09154"
LIST_2023 = date(2023, 5, 7)


def payout_settings(
    database_url: str | None,
    kafka: str | None,
    data_dir: Path,
    api_port: int,
    sandbox_url: str,
    **overrides: Any,
) -> PayoutSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka,
        "data_dir": data_dir,
        "topic_partitions": 2,
        "host": "127.0.0.1",
        "port": api_port,
        **tokens.trust("payout"),
        "bank_base_url": sandbox_url,
        "bank_read_timeout_seconds": 1.0,
        "scheduler_enabled": False,
        "status_inquiry_after_seconds": 3.0,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.5,
        "worker_idle_seconds": 0.05,
        "lease_seconds": 30.0,
        "batch_size": 50,
    }
    values.update(overrides)
    return PayoutSettings(**values)


@dataclass
class Person:
    """A beneficiary with one monthly entitlement and an account (or cash)."""

    beneficiary_id: str
    entitlement_id: str
    name: str
    amount: int
    bank_bin: str | None
    account_number: str | None
    method_id: str
    method: str = "OWN_ACCOUNT"
    representative: Representative | None = None

    @property
    def holder_name(self) -> str:
        return self.representative.full_name if self.representative else self.name


def people(
    count: int,
    *,
    bank_bin: str = VCB,
    amount: int = 1_500_000,
    start: int = 0,
    tag: str | None = None,
) -> list[Person]:
    tag = tag or uuid.uuid4().hex[:6]
    surnames = ["Nguyễn Văn", "Trần Thị", "Lê Đức", "Phạm Thị", "Đỗ Văn"]
    given = ["Ánh", "Đức", "Hương", "Bình", "Thảo", "Dũng"]
    return [
        Person(
            beneficiary_id=f"BEN-{tag}-{n}",
            entitlement_id=f"ENT-{tag}-{n}",
            name=f"{surnames[n % 5]} {given[n % 6]}",
            amount=amount + 1000 * (n % 7),
            bank_bin=bank_bin,
            account_number=f"{n + 1:04d}{tag[:4].upper()}99".replace("-", "")[:14],
            method_id=f"PM-{tag}-{n}",
        )
        for n in range(start, start + count)
    ]


def intake_events(
    person: Person,
    *,
    start_period: str,
    kind: str = "OPEN_MONTHLY",
    installments_count: int | None = None,
    method: bool = True,
) -> list[Contract]:
    now = datetime.now(UTC)
    events: list[Contract] = [
        BeneficiaryRegistered(
            beneficiary_id=person.beneficiary_id,
            full_name=person.name,
            commune_code=COMMUNE,
            commune_list_date=LIST_2023,
            registered_via="ROLL",
            registered_at=now,
        ),
        EntitlementGranted(
            entitlement_id=person.entitlement_id,
            beneficiary_id=person.beneficiary_id,
            scheme="PENSION",
            agency="BHXH",
            decision_number=f"QD-{person.entitlement_id}",
            amount_per_installment=person.amount,
            schedule=Schedule(
                kind=kind, start_period=start_period, installments=installments_count
            ),
            commune_code=COMMUNE,
            commune_list_date=LIST_2023,
            granted_at=now,
        ),
    ]
    if method:
        events.append(method_event(person))
    return events


def method_event(person: Person, *, method_id: str | None = None) -> PaymentMethodChanged:
    cash = person.method == "CASH_POST_OFFICE"
    return PaymentMethodChanged(
        beneficiary_id=person.beneficiary_id,
        method_id=method_id or person.method_id,
        method=person.method,
        bank_bin=None if cash else person.bank_bin,
        account_number=None if cash else person.account_number,
        account_holder_name=None if cash else person.holder_name,
        representative=person.representative,
        cash_reason="cannot transact; nobody to authorise" if cash else None,
        status="PENDING_VERIFICATION",
        channel="ROLL",
        changed_at=datetime.now(UTC),
    )


def accounts(
    persons: Sequence[Person], status: str = "ACTIVE", name: str | None = None
) -> list[dict[str, str]]:
    return [
        {
            "bin": p.bank_bin,
            "account_number": p.account_number,
            "holder_name": name or p.holder_name,
            "status": status,
        }
        for p in persons
        if p.bank_bin and p.account_number
    ]


def envelope(payload: Contract) -> tuple[str, bytes]:
    contract = CONTRACT_BY_MODEL[type(payload)]
    key = str(getattr(payload, contract.key_field))
    event = CloudEvent(
        type=contract.type,
        source="/benefits/intake",
        subject=key,
        data=payload.model_dump(mode="json"),
    )
    return key, event.to_json()


@dataclass
class PayoutStack:
    settings: PayoutSettings
    sandbox_url: str
    consumer_name: str = field(default_factory=lambda: f"payout.intake-view-{uuid.uuid4().hex[:8]}")
    runtime: Runtime | None = None
    workers: PayoutWorkers | None = None
    channels: BankChannelRegistry | None = None
    consumer: ConsumerRunner | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    server: uvicorn.Server | None = None
    _offset: int = 0
    last_records: Sequence[ReceivedRecord] = ()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    async def start(self, *, run_workers: bool = True, relay: bool = False) -> PayoutStack:
        await upgrade_to_head_async(MIGRATIONS, self.settings.resolved_database_url())
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.tasks.append(asyncio.ensure_future(self.server.serve()))
        await wait_until(self._started, timeout=20, message="payout API started")
        from services.payout.adapters.orm import metadata

        self.runtime = await Runtime.open(self.settings, metadata)
        self.channels = BankChannelRegistry(self.settings.bank_channels())
        self.workers = PayoutWorkers(
            self.settings, self.runtime.session_factory, self.runtime.outbox, self.channels
        )
        self.consumer = intake_view_consumer(self.runtime, name=self.consumer_name)
        if run_workers:
            self.start_workers()
        if relay:
            self.tasks.append(asyncio.ensure_future(run_relay(self.runtime, self.stop)))
        return self

    async def _started(self) -> bool:
        for task in self.tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
        return bool(self.server and self.server.started)

    def start_workers(self) -> None:
        assert self.workers is not None
        for work in (
            self.workers.run_submission(self.stop),
            self.workers.run_sweeper(self.stop),
            self.workers.run_verification(self.stop),
        ):
            self.tasks.append(asyncio.ensure_future(work))

    async def close(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 20)
        if self.channels is not None:
            await self.channels.aclose()
        if self.runtime is not None:
            await self.runtime.close()

    # -- intake's events ----------------------------------------------------------------------

    async def feed(self, events: Sequence[Contract], *, twice: bool = False) -> None:
        """Deliver intake's events to the payout's consumer the way the bus hands them over
        (records of CloudEvents), in one poll batch; `twice` delivers each record again."""
        assert self.consumer is not None and self.runtime is not None
        records = []
        for payload in events:
            key, value = envelope(payload)
            self._offset += 1
            records.append(ReceivedRecord(BENEFICIARY_TOPIC, 0, self._offset, key.encode(), value))
        if twice:
            records = records + records
        self.last_records = records
        await self.deliver(records)

    async def deliver(self, records: Sequence[ReceivedRecord]) -> None:
        assert self.consumer is not None and self.runtime is not None
        dlq = self.runtime.bus.producer()
        await dlq.start()
        try:
            await self.consumer.process(records, dlq)
        finally:
            await dlq.stop()

    async def publish(self, events: Sequence[Contract]) -> None:
        """Publish intake's events on the real bus (intake's topic)."""
        assert self.runtime is not None
        producer = self.runtime.bus.producer()
        await producer.start()
        try:
            await producer.publish(
                [
                    OutgoingRecord(BENEFICIARY_TOPIC, key.encode(), value)
                    for key, value in (envelope(p) for p in events)
                ]
            )
        finally:
            await producer.stop()

    # -- the API ------------------------------------------------------------------------------

    def client(self, *scopes: str) -> httpx.AsyncClient:
        token = tokens.token(set(scopes or ("payout:operate", "payout:read", "cycles:prepare")))
        return httpx.AsyncClient(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def person(self, sub: str, *roles: str, agency: str | None = None) -> httpx.AsyncClient:
        """A client acting as an officer signed in (roles bound to `agency`)."""
        token = tokens.token(sub=sub, kind="person", roles=set(roles), agency=agency)
        return httpx.AsyncClient(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    async def prepare_cycle(self, period: str) -> dict[str, Any]:
        """POST /v1/cycles as an operator client: the cycle is prepared, nothing is sent."""
        async with self.client() as client:
            response = await client.post("/v1/cycles", json={"period": period})
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def start_cycle(self, period: str, *, approve: bool = True) -> dict[str, Any]:
        """Prepare the period and (unless told not to) release it as a province would: envelopes
        loaded for what it pays, each agency's part approved by a checker of that agency."""
        prepared = await self.prepare_cycle(period)
        if approve:
            await self.approve_all(period)
        return prepared

    async def load_envelopes(self, period: str, amount: int = 10**12 - 1) -> None:
        """An envelope of `amount` for every agency and scheme the period awaits approval of
        that has none yet."""
        view = await self.progress(period)
        rows = [
            {"period": period, "agency": agency, "scheme": scheme, "amount": amount}
            for agency, part in view["agencies"].items()
            if part["awaiting_approval"]
            for scheme, use in part["envelopes"].items()
            if use["envelope"] is None
        ]
        if not rows:
            return
        async with self.client("envelopes:write") as client:
            response = await client.put("/v1/envelopes", json={"envelopes": rows})
        assert response.status_code == 200, response.text

    async def approve_all(self, period: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Approve every part of the period awaiting approval, as a checker of its agency (a
        second officer: never the preparer), once the cycle is prepared."""

        assert self.runtime is not None
        await revalidate(self.runtime, period)

        async def prepared() -> dict[str, Any] | None:
            view = await self.progress(period)
            return (
                view
                if view["approval_state"] not in ("CREATING", "AWAITING_REVALIDATION")
                else None
            )

        await wait_until(prepared, timeout=timeout, interval=0.1, message=f"{period} prepared")
        await self.load_envelopes(period)
        view = await self.progress(period)
        decided = []
        for agency, part in view["agencies"].items():
            if not part["awaiting_approval"]:
                continue
            async with self.person(f"checker-{agency.lower()}", "checker", agency=agency) as client:
                response = await client.post(
                    f"/v1/cycles/{period}/approvals",
                    json={"agency": agency, "digest": part["awaiting_approval"]["digest"]},
                )
            if response.status_code == 409 and response.json().get("waiting_for", ()) == []:
                continue  # approved meanwhile by a concurrent call: nothing awaits any more
            if response.status_code == 409 and "stale" in response.json()["type"]:
                continue  # it changed meanwhile (a supplement is approved on the next pass)
            assert response.status_code == 201, response.text
            decided.append(response.json())
        return decided

    async def progress(self, period: str) -> dict[str, Any]:
        async with self.client() as client:
            response = await client.get(f"/v1/cycles/{period}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_complete(
        self, period: str, timeout: float = 60, *, approve: bool = True
    ) -> dict[str, Any]:
        """Wait until every installment of the period is final; with `approve`, a supplementary
        part (cash fallbacks, released holds, changed methods) is approved as it appears."""

        async def done() -> dict[str, Any] | None:
            progress = await self.progress(period)
            if approve and progress["approval_state"] == "PREPARED":
                await self.approve_all(period)
            return progress if progress["complete"] else None

        return await wait_until(
            done, timeout=timeout, interval=0.2, message=f"cycle {period} complete"
        )

    async def states(self, period: str) -> dict[str, int]:
        assert self.runtime is not None
        async with self.runtime.session_factory() as session:
            rows = (
                await session.execute(
                    select(installments.c.state, func.count())
                    .where(installments.c.period == period)
                    .group_by(installments.c.state)
                )
            ).all()
        return {state: int(count) for state, count in rows}

    async def outbox_types(self) -> dict[str, int]:
        assert self.runtime is not None
        async with self.runtime.session_factory() as session:
            rows = (
                await session.execute(
                    select(outbox.c.event_type, func.count()).group_by(outbox.c.event_type)
                )
            ).all()
        return {event_type.split(".")[3]: int(count) for event_type, count in rows}


async def verified(stack: PayoutStack, persons: Sequence[Person], timeout: float = 30) -> None:
    """Wait until every person's method has been verified (or refused) by the worker."""

    async def check() -> bool:
        assert stack.runtime is not None
        from services.payout.adapters.orm import payment_methods

        async with stack.runtime.session_factory() as session:
            pending = (
                await session.execute(
                    select(func.count())
                    .select_from(payment_methods)
                    .where(
                        payment_methods.c.beneficiary_id.in_([p.beneficiary_id for p in persons]),
                        payment_methods.c.status == "PENDING_VERIFICATION",
                    )
                )
            ).scalar_one()
        return pending == 0

    await wait_until(check, timeout=timeout, message="verifications done")


async def admin(url: str) -> SandboxAdmin:
    return SandboxAdmin(url)


def method_row(n: int, **overrides: Any) -> dict[str, Any]:
    """A payout-side payment-method row: verified own account at VCB unless overridden."""
    row = {
        "beneficiary_id": f"B-{n}",
        "method_id": f"M-{n}",
        "method": model.OWN_ACCOUNT,
        "bank_bin": VCB,
        "account_number": f"{n:08d}",
        "account_holder_name": "NGUYEN VAN A",
        "verified_name": None,
        "representative_name": None,
        "representative_valid_from": None,
        "representative_valid_until": None,
        "cash_reason": None,
        "status": model.METHOD_VERIFIED,
        "status_reason": None,
        "changed_at": datetime(2031, 1, 1, tzinfo=UTC),
        "verified_at": None,
        "updated_at": datetime(2031, 1, 1, tzinfo=UTC),
    }
    row.update(overrides)
    return row


async def release_cycle(runtime: Runtime, period: str, now: datetime | None = None) -> int:
    """What the API does for a checker, in the service layer: envelopes loaded for what awaits
    approval, and each agency's part approved by a checker of that agency (for tests that drive
    the cycle's service functions directly). Returns how many batches it released."""
    from services.payout.adapters.repository import approvals as statements
    from services.payout.adapters.repository.reads import cycle_row
    from services.payout.service_layer import approvals
    from shared.auth import Principal
    from shared.authority import scopes_of_roles
    from shared.uow import UnitOfWork, unit_of_work

    released = 0
    await revalidate(runtime, period, now)
    async with runtime.session_factory() as session:
        cycle = await cycle_row(session, period)
        assert cycle is not None, f"no cycle for {period}"
        agencies = await statements.awaiting_agencies(session, cycle["id"])
    for agency in agencies:
        async with unit_of_work(
            runtime.session_factory, runtime.outbox, "tests", now=now, kind=UnitOfWork
        ) as uow:
            current = await approvals.awaiting_of(uow, cycle["id"], period, agency)
            await approvals.set_envelopes(
                uow,
                [
                    {"period": period, "agency": agency, "scheme": s, "amount": 10**12 - 1}
                    for s in current.by_scheme
                ],
            )
        checker = Principal(
            f"checker-{agency.lower()}",
            scopes_of_roles({"checker"}),
            kind="person",
            roles=frozenset({"checker"}),
            agency_claim=agency,
        )
        async with unit_of_work(
            runtime.session_factory, runtime.outbox, checker.client_id, now=now, kind=UnitOfWork
        ) as uow:
            decided = await approvals.decide(
                uow,
                checker,
                period,
                agency=agency,
                digest=current.digest,
                decision="APPROVE",
                reason=None,
            )
        released += decided.batches
    return released


async def revalidate(runtime: Runtime, period: str, now: datetime | None = None) -> None:
    """Intake's answer that nobody paid in `period` is to be held (one last part), unless the
    period has its answer already."""
    from services.payout.service_layer.revalidation import record_revalidation, revalidation_done
    from shared.events.contracts import RevalidationCompleted
    from shared.uow import UnitOfWork, unit_of_work

    async with unit_of_work(
        runtime.session_factory, runtime.outbox, "tests", now=now, kind=UnitOfWork
    ) as uow:
        if await revalidation_done(uow, period):
            return
        await record_revalidation(
            uow,
            RevalidationCompleted(
                period=period, part=1, last=True, checked=0, holds=[], completed_at=uow.now
            ),
        )
