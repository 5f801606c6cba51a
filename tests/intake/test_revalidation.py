"""Identity revalidation before a period is paid, end to end on the embedded default (SQLite)
and on PostgreSQL + Kafka: payout's `CycleOpened` → a request → the pass against the population
registry (the sandbox, a real server) → outcomes, stop proposals, `RevalidationCompleted` parts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime

import orjson
import pytest
from sqlalchemy import select

from services.intake.adapters.orm import beneficiaries, entitlements, outbox
from services.intake.adapters.population import HttpPopulationRegistry, IdentityQuery
from services.intake.adapters.revalidation_tables import (
    revalidation_requests,
    revalidation_results,
    stop_proposals,
)
from services.intake.consumers.cycles import cycle_consumer
from services.intake.domain.revalidation import RegistryAnswer
from services.intake.service_layer import revalidation
from services.intake.settings import IntakeSettings
from services.intake.workers import RevalidationSettings, RevalidationWorker, run_revalidation
from shared.events.contracts import CONTRACT_BY_MODEL, CYCLE_TOPIC, CycleOpened
from shared.events.envelope import CloudEvent
from shared.messaging.ports import OutgoingRecord
from tests.intake import builders
from tests.intake.conftest import Intake, running_intake
from tests.support.sandbox import SandboxAdmin, SandboxProcess
from tests.support.waiting import wait_until

PERIOD = "2026-11"
COMPLETED_TYPE = "vn.benefits.intake.revalidation-completed.v1"


@pytest.fixture(scope="module")
def registry_process() -> Iterator[SandboxProcess]:
    with SandboxProcess(callback_base="http://127.0.0.1:9") as process:
        yield process


@pytest.fixture
async def registry_admin(registry_process: SandboxProcess) -> AsyncIterator[SandboxAdmin]:
    admin = SandboxAdmin(registry_process.url)
    await admin.reset()
    yield admin
    await admin.set_faults()
    await admin.aclose()


@pytest.fixture(params=["sqlite", "postgres"])
async def intake(request, pg_database, kafka_bootstrap, tmp_path) -> AsyncIterator[Intake]:
    """Intake on SQLite with the embedded log, then on PostgreSQL with Kafka topics of its own."""
    if request.param == "sqlite":
        settings = IntakeSettings(data_dir=tmp_path)
    else:
        settings = IntakeSettings(
            database_url=await pg_database("intake"),
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
            data_dir=tmp_path,
        )
    async for running in running_intake(settings):
        yield running


def settings_for(process: SandboxProcess, **overrides) -> RevalidationSettings:
    values = {
        "population_registry_url": process.url,
        "population_timeout_seconds": 5.0,
        "revalidation_chunk_size": 2,
        "revalidation_lease_seconds": 30.0,
        "revalidation_idle_seconds": 0.05,
        **overrides,
    }
    return RevalidationSettings(**values)


class World:
    """Who intake pays (roll uploads of BHXH and DOLISA) and what the registry knows of them."""

    def __init__(self) -> None:
        self.alive = [builders.roll_row("PENSION") for _ in range(3)]
        self.deceased = builders.roll_row("PENSION")
        # The same person is also paid by DOLISA: one proposal per open entitlement.
        self.deceased_dolisa = builders.roll_row(
            "MERITORIOUS",
            national_id=self.deceased["national_id"],
            full_name=self.deceased["full_name"],
            date_of_birth=self.deceased["date_of_birth"],
        )
        self.mismatch = builders.roll_row("PENSION")
        self.unknown = builders.roll_row("PENSION")
        self.not_yet = builders.roll_row("PENSION", start_period="2027-01")  # not paid in PERIOD
        self.ids: dict[str, str] = {}

    def rows(self) -> list[dict]:
        return [*self.alive, self.deceased, self.mismatch, self.unknown, self.not_yet]

    def registry(self) -> list[dict]:
        persons = [
            {
                "national_id": r["national_id"],
                "full_name": r["full_name"],
                "date_of_birth": r["date_of_birth"],
            }
            for r in [*self.alive, self.deceased, self.mismatch, self.not_yet]
        ]
        for person in persons:
            if person["national_id"] == self.deceased["national_id"]:
                person.update(status="DECEASED", date_of_death="2026-10-02")
            if person["national_id"] == self.mismatch["national_id"]:
                person["full_name"] = "Người Khác Hẳn"
        return persons

    def personal_data(self) -> list[str]:
        every = [*self.rows(), self.deceased_dolisa]
        return [r["national_id"] for r in every] + [r["full_name"] for r in every]


async def build_world(intake: Intake, admin: SandboxAdmin) -> World:
    world = World()
    uploaded = await intake.post("/v1/roll/uploads", "bhxh", json={"rows": world.rows()})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["accepted"] == len(world.rows())
    uploaded = await intake.post(
        "/v1/roll/uploads", "dolisa", json={"rows": [world.deceased_dolisa]}
    )
    assert uploaded.status_code == 201 and uploaded.json()["accepted"] == 1, uploaded.text
    for row in await intake.rows(select(beneficiaries.c.id, beneficiaries.c.national_id)):
        world.ids[row.national_id] = row.id
    await admin.seed_population(world.registry())
    return world


async def publish_cycle_opened(intake: Intake, period: str, times: int = 1) -> None:
    runtime = intake.app.state.runtime
    producer = runtime.bus.producer()
    await producer.start()
    try:
        for _ in range(times):  # each one a new event (a new id): payout opened the cycle again
            event = CloudEvent(
                type=CONTRACT_BY_MODEL[CycleOpened].type,
                source="/benefits/payout",
                subject=period,
                data=CycleOpened(period=period, opened_at=datetime.now(UTC)).model_dump(
                    mode="json"
                ),
            )
            await producer.publish([OutgoingRecord(CYCLE_TOPIC, period.encode(), event.to_json())])
    finally:
        await producer.stop()


class Running:
    """Background tasks of a test, stopped at its end."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self, work) -> None:
        self.tasks.append(asyncio.ensure_future(work))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


async def request_state(intake: Intake, period: str) -> str | None:
    rows = await intake.rows(
        select(revalidation_requests.c.state).where(revalidation_requests.c.period == period)
    )
    return rows[0].state if rows else None


async def completed_events(intake: Intake, period: str) -> list[dict]:
    rows = await intake.rows(
        select(outbox.c.payload, outbox.c.key)
        .where(outbox.c.event_type == COMPLETED_TYPE, outbox.c.key == period)
        .order_by(outbox.c.id)
    )
    return [orjson.loads(r.payload) for r in rows]


def _data(event: dict) -> dict:
    return event.get("data", event)


class TestPass:
    async def test_cycle_opened_checks_everyone_paid_and_holds_who_must_not_be_paid(
        self, intake, registry_process, registry_admin, monkeypatch
    ):
        # Two holds a part, so the three holds go out in two parts.
        monkeypatch.setattr(revalidation, "MAX_REVALIDATION_HOLDS", 2)
        world = await build_world(intake, registry_admin)
        runtime = intake.app.state.runtime
        running = Running()
        group = f"intake.revalidation.test-{uuid.uuid4().hex[:8]}"
        running.start(cycle_consumer(runtime, name=group).run(running.stop))
        running.start(
            run_revalidation(runtime, running.stop, settings=settings_for(registry_process))
        )
        try:
            await publish_cycle_opened(intake, PERIOD, times=2)
            await wait_until(
                lambda: _is(request_state(intake, PERIOD), "DONE"),
                timeout=60,
                message="the pass done",
            )
        finally:
            await running.close()

        paid = [*world.alive, world.deceased, world.mismatch, world.unknown]
        results = {
            r.beneficiary_id: r
            for r in await intake.rows(
                select(revalidation_results).where(revalidation_results.c.period == PERIOD)
            )
        }
        assert set(results) == {world.ids[r["national_id"]] for r in paid}  # not the 2027 one
        outcome = {bid: r.outcome for bid, r in results.items()}
        assert outcome[world.ids[world.deceased["national_id"]]] == "DECEASED"
        assert results[world.ids[world.deceased["national_id"]]].date_of_death == date(2026, 10, 2)
        assert outcome[world.ids[world.mismatch["national_id"]]] == "IDENTITY_MISMATCH"
        assert outcome[world.ids[world.unknown["national_id"]]] == "NOT_FOUND"
        assert all(outcome[world.ids[r["national_id"]]] == "CONFIRMED" for r in world.alive)

        # One stop proposal per open entitlement of the deceased holder, each for its agency.
        proposals = await intake.rows(select(stop_proposals))
        deceased_id = world.ids[world.deceased["national_id"]]
        assert sorted(p.agency for p in proposals) == ["BHXH", "DOLISA"]
        assert {p.beneficiary_id for p in proposals} == {deceased_id}
        assert all(p.state == "OPEN" and p.reason == "DECEASED" for p in proposals)

        # The holds in two parts, the last one marked with everyone checked; nothing personal.
        events = await completed_events(intake, PERIOD)
        assert [_data(e)["part"] for e in events] == [1, 2]
        assert [_data(e)["last"] for e in events] == [False, True]
        assert _data(events[-1])["checked"] == len(paid)
        holds = {(h["beneficiary_id"], h["outcome"]) for e in events for h in _data(e)["holds"]}
        assert holds == {
            (deceased_id, "DECEASED"),
            (world.ids[world.mismatch["national_id"]], "IDENTITY_MISMATCH"),
            (world.ids[world.unknown["national_id"]], "NOT_FOUND"),
        }
        raw = orjson.dumps(events).decode()
        for value in world.personal_data():
            assert value not in raw

        # The second CycleOpened of the period doubled nothing.
        assert await intake.count(revalidation_requests) == 1
        assert await intake.count(stop_proposals) == 2
        stats = await registry_admin.population()
        assert stats["persons_checked"] == len(paid)

    async def test_a_pass_stopped_midway_resumes_where_it_was(
        self, intake, registry_process, registry_admin
    ):
        world = await build_world(intake, registry_admin)
        runtime = intake.app.state.runtime
        settings = settings_for(registry_process, revalidation_lease_seconds=0.5)

        class CrashingRegistry(HttpPopulationRegistry):
            """The process dies while the registry answers its second chunk."""

            calls = 0

            async def check(self, persons: list[IdentityQuery]) -> list[RegistryAnswer]:
                CrashingRegistry.calls += 1
                answers = await super().check(persons)
                if CrashingRegistry.calls == 2:
                    raise RuntimeError("the worker process died")
                return answers

        async with _transaction(intake) as uow:
            await revalidation.request_revalidation(uow, PERIOD, datetime.now(UTC))
        crashing = CrashingRegistry(registry_process.url)
        try:
            with pytest.raises(RuntimeError):
                await RevalidationWorker(runtime, crashing, settings).step()
        finally:
            await crashing.aclose()
        [row] = await intake.rows(select(revalidation_requests))
        assert (row.state, row.chunks, row.checked) == ("PENDING", 1, 2)
        assert await intake.count(revalidation_results) == 2

        # A chunk written again from where the dead worker stood is refused: nothing doubles.
        stale = revalidation.Pass(PERIOD, None, 0, 0)
        async with runtime.engine.connect() as conn:
            first = await revalidation.next_persons(conn, stale, 2)
        with pytest.raises(revalidation.PassMoved):
            async with _transaction(intake) as uow:
                await revalidation.record_chunk(
                    uow, stale, first, [RegistryAnswer(found=False)] * 2, 1.0
                )

        # Another worker takes the pass over once the lease has run out, from the cursor on.
        running = Running()
        running.start(run_revalidation(runtime, running.stop, settings=settings))
        try:
            await wait_until(
                lambda: _is(request_state(intake, PERIOD), "DONE"),
                timeout=60,
                message="the pass resumed and done",
            )
        finally:
            await running.close()
        paid = 6
        [row] = await intake.rows(select(revalidation_requests))
        assert (row.checked, row.chunks) == (paid, 3)
        assert await intake.count(revalidation_results) == paid
        assert await intake.count(stop_proposals) == 2
        [event] = await completed_events(intake, PERIOD)
        assert _data(event)["last"] is True and len(_data(event)["holds"]) == 3
        # Only the chunk the dead worker had in flight was asked twice.
        assert (await registry_admin.population())["persons_checked"] == paid + 2
        assert world.ids

    async def test_a_period_nobody_is_paid_in_still_completes(
        self, intake, registry_process, registry_admin
    ):
        runtime = intake.app.state.runtime
        async with _transaction(intake) as uow:
            assert await revalidation.request_revalidation(uow, "2019-01", datetime.now(UTC))
            assert not await revalidation.request_revalidation(uow, "2019-01", datetime.now(UTC))
        registry = HttpPopulationRegistry(registry_process.url)
        try:
            assert await RevalidationWorker(
                runtime, registry, settings_for(registry_process)
            ).step()
        finally:
            await registry.aclose()
        [event] = await completed_events(intake, "2019-01")
        assert _data(event)["last"] is True
        assert (_data(event)["checked"], _data(event)["holds"]) == (0, [])
        assert (await registry_admin.population())["checks"] == 0


class TestStopProposals:
    async def test_agency_sees_its_own_and_a_stop_confirms_it(
        self, intake, registry_process, registry_admin
    ):
        world = await build_world(intake, registry_admin)
        runtime = intake.app.state.runtime
        async with _transaction(intake) as uow:
            await revalidation.request_revalidation(uow, PERIOD, datetime.now(UTC))
        registry = HttpPopulationRegistry(registry_process.url)
        try:
            await RevalidationWorker(runtime, registry, settings_for(registry_process)).step()
        finally:
            await registry.aclose()

        bhxh = await intake.get("/v1/stop-proposals", "bhxh")
        assert bhxh.status_code == 200, bhxh.text
        [mine] = bhxh.json()["items"]
        assert mine["agency"] == "BHXH" and mine["state"] == "OPEN"
        assert mine["date_of_death"] is None  # without pii:read
        assert set(mine) >= {"entitlement_id", "beneficiary_id", "reason", "period"}
        [theirs] = (await intake.get("/v1/stop-proposals", "dolisa")).json()["items"]
        assert theirs["agency"] == "DOLISA"
        refused = await intake.get("/v1/stop-proposals?agency=DOLISA", "bhxh")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        bad = await intake.get("/v1/stop-proposals?state=MAYBE", "bhxh")
        assert bad.status_code == 422
        everyone = (await intake.get("/v1/stop-proposals", "admin")).json()["items"]
        assert len(everyone) == 2 and {p["date_of_death"] for p in everyone} == {"2026-10-02"}
        page = (await intake.get("/v1/stop-proposals?limit=1", "admin")).json()
        rest = (
            await intake.get(f"/v1/stop-proposals?cursor={page['next_cursor']}", "admin")
        ).json()
        assert [p["id"] for p in page["items"] + rest["items"]] == [p["id"] for p in everyone]

        stopped = await intake.post(
            f"/v1/entitlements/{mine['entitlement_id']}/stop",
            "bhxh",
            json={"reason": "DEATH", "effective_period": PERIOD},
        )
        assert stopped.status_code == 200, stopped.text
        [confirmed] = (await intake.get("/v1/stop-proposals?state=CONFIRMED", "bhxh")).json()[
            "items"
        ]
        assert confirmed["id"] == mine["id"] and confirmed["resolved_at"] is not None
        assert (await intake.get("/v1/stop-proposals?state=OPEN", "dolisa")).json()["items"]
        # Stopped, the entitlement is not paid next period, and no second proposal is made.
        assert (
            await intake.count(
                entitlements,
                entitlements.c.id == mine["entitlement_id"],
                entitlements.c.status == "STOPPED",
            )
            == 1
        )
        # The next period's pass finds the holder deceased again: no second proposal is made.
        async with _transaction(intake) as uow:
            await revalidation.request_revalidation(uow, "2026-12", datetime.now(UTC))
        registry = HttpPopulationRegistry(registry_process.url)
        try:
            await RevalidationWorker(runtime, registry, settings_for(registry_process)).step()
        finally:
            await registry.aclose()
        deceased_id = world.ids[world.deceased["national_id"]]
        [again] = await intake.rows(
            select(revalidation_results).where(
                revalidation_results.c.period == "2026-12",
                revalidation_results.c.beneficiary_id == deceased_id,
            )
        )
        assert again.outcome == "DECEASED"  # still paid by DOLISA
        assert await intake.count(stop_proposals) == 2


async def _is(value, expected) -> bool:
    return (await value) == expected


def _transaction(intake: Intake):
    from services.intake.service_layer.common import IntakeUnitOfWork
    from shared.uow import unit_of_work

    runtime = intake.app.state.runtime
    return unit_of_work(runtime.engine, runtime.outbox, "test", kind=IntakeUnitOfWork)
