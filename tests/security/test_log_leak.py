"""No personal data in the logs of a full demo run: `benefits demo` (every service, the workers,
the bank sandbox, a generated province, two monthly cycles) with all of its output captured,
searched for every generated CCCD, account number and full name."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Column, Date, MetaData, String, Table, insert

from services.demo.province import generate
from shared.events.contracts import BENEFICIARY_TOPIC, dead_letter_topic
from shared.events.envelope import CloudEvent
from shared.inbox import ConsumerRunner
from shared.messaging.ports import ReceivedRecord
from shared.observability import JsonFormatter, configure_logging
from tests.support import probe
from tests.support.sandbox import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BENEFITS = str(Path(sys.executable).parent / "benefits")
BENEFICIARIES = 120
SEED = 2023


def _personal_data() -> dict[str, set[str]]:
    province = generate(seed=SEED, beneficiaries=BENEFICIARIES, unemployment_scale=0.05)
    people = [entry.person for entry in province.roll] + [
        claim.person for claim in province.unemployment
    ]
    representatives = [
        collected.representative.person
        for entry in province.roll
        for collected in entry.methods
        if collected.representative is not None
    ]
    everyone = people + representatives
    accounts = province.accounts()
    return {
        "CCCD": {p.national_id for p in everyone},
        "account number": {a.account_number for a in accounts},
        "full name": {p.full_name for p in everyone} | {a.holder_name for a in accounts},
    }


def test_a_full_demo_run_logs_no_personal_data(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTAKE_", "PAYOUT_", "REPORTING_", "SANDBOX_"))
    }
    env.update(
        {f"{name}_PORT": str(free_port()) for name in ("INTAKE", "PAYOUT", "REPORTING", "SANDBOX")}
    )
    env["COLUMNS"] = "200"
    run = subprocess.run(
        [
            BENEFITS,
            "demo",
            "--beneficiaries",
            str(BENEFICIARIES),
            "--months",
            "2",
            "--seed",
            str(SEED),
            "--no-stay",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=600,
    )
    logs = run.stdout.decode("utf-8", errors="replace")
    (tmp_path / "demo.log").write_text(logs, encoding="utf-8")
    assert run.returncode == 0, logs[-3000:]
    assert "Demo ready" in logs  # the run went all the way: there was something to leak

    data = _personal_data()
    assert all(data.values()) and len(data["CCCD"]) >= BENEFICIARIES
    # The same province as the run: its people are in the run's databases (where they belong).
    stored = b"".join(path.read_bytes() for path in (tmp_path / "demo").rglob("*.db"))
    roll = [
        entry.person.national_id
        for entry in generate(seed=SEED, beneficiaries=BENEFICIARIES, unemployment_scale=0.05).roll
    ]
    assert sum(cccd.encode() in stored for cccd in roll) >= 0.9 * len(roll)
    leaks = {kind: sorted(v for v in values if v in logs) for kind, values in data.items()}
    assert not any(leaks.values()), {kind: found[:5] for kind, found in leaks.items() if found}


# --- database errors: the values they were about stay out of logs and dead letters ------------

CCCD = "026190004567"
NAME = "Nguyễn Thị Bích Ngọc"
people_table = Table(
    "people",
    MetaData(),
    Column("national_id", String(12), primary_key=True),
    Column("full_name", String(200), nullable=False),
    Column("born", Date, nullable=True),
)


class CapturedJsonLogs(logging.Handler):
    """What the services' JSON log would print."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_logs():
    """The services' logging at its most verbose, captured."""
    handler = CapturedJsonLogs()
    root = logging.getLogger()
    libraries = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "aiokafka")
    previous = root.level, [logging.getLogger(name).level for name in libraries]
    root.addHandler(handler)
    configure_logging("DEBUG")
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous[0])
    for name, level in zip(libraries, previous[1], strict=True):
        logging.getLogger(name).setLevel(level)


@pytest.fixture(params=["postgres+kafka", "embedded"])
async def probe_runtime(request, tmp_path, pg_database, kafka_bootstrap):
    if request.param == "embedded":
        settings = probe.probe_settings(None, None, tmp_path)
    else:
        settings = probe.probe_settings(
            await pg_database("leak"), kafka_bootstrap, tmp_path, f"t{uuid.uuid4().hex[:8]}."
        )
    runtime = await probe.open_probe(settings)
    async with runtime.engine.begin() as conn:
        await conn.run_sync(people_table.metadata.create_all)
    yield runtime
    await runtime.close()


async def _register_person(session, delivery) -> None:
    """A handler whose statements fail with the person's CCCD and name among their parameters."""
    await session.execute(insert(people_table).values(national_id=CCCD, full_name=NAME))
    if delivery.payload.entitlement_id == "0":
        # The same CCCD again: PostgreSQL's DETAIL quotes the key.
        await session.execute(insert(people_table).values(national_id=CCCD, full_name=NAME))
    else:
        # A name where a date belongs: the driver quotes the argument.
        await session.execute(
            insert(people_table).values(national_id=CCCD[:-1] + "9", full_name=NAME, born=NAME)
        )


class TestDatabaseErrorsLeakNoPersonalData:
    async def test_dead_letter_headers_and_logs_name_the_error_but_not_the_values(
        self, probe_runtime, json_logs
    ):
        runtime = probe_runtime
        key = uuid.uuid4().hex[:8]
        runner = ConsumerRunner(
            f"probe.{key}",
            [BENEFICIARY_TOPIC],
            {probe.STOPPED_TYPE: _register_person},
            runtime.session_factory,
            probe.processed,
            runtime.bus,
            max_attempts=2,
        )
        records = [
            ReceivedRecord(
                BENEFICIARY_TOPIC,
                0,
                seq,
                key.encode(),
                CloudEvent(
                    type=probe.STOPPED_TYPE,
                    source="/test",
                    subject=key,
                    data=probe.stopped(key, seq).model_dump(mode="json"),
                ).to_json(),
            )
            for seq in (0, 1)
        ]
        dlq = runtime.bus.producer()
        await dlq.start()
        try:
            await runner.process(records, dlq)
        finally:
            await dlq.stop()
        assert runner.dead_lettered_total == 2

        reader = runtime.bus.consumer(f"probe.dlq.{key}", [dead_letter_topic(BENEFICIARY_TOPIC)])
        await reader.start()
        errors: list[str] = []
        try:

            async def both_dead_letters() -> bool:
                for record in await reader.poll(100, 500):
                    if record.key == key.encode():
                        errors.append(record.header("dlq-error") or "")
                return len(errors) >= 2

            await wait_until(both_dead_letters, message="the two dead letters")
        finally:
            await reader.stop()

        # The same errors, logged the way the services log a failed step.
        for record in records:
            delivery = runner._decode(record)
            try:
                async with runtime.session_factory() as session, session.begin():
                    await _register_person(session, delivery)
            except Exception as exc:
                logging.getLogger("services.probe").warning("step failed", exc_info=exc)
        logged = "\n".join(json_logs.lines)

        assert all(e.startswith("after 2 attempts: ") for e in errors), errors
        if runtime.engine.dialect.name == "postgresql":
            assert any("SQLSTATE 23505" in e and "people_pkey" in e for e in errors), errors
            assert any("SQLSTATE 22" in e for e in errors), errors
        assert (
            "Traceback" in logged and "step failed" in logged
        )  # the errors were logged, frames and all
        for secret in (CCCD, CCCD[:-1] + "9", NAME):
            assert secret not in logged
            assert not any(secret in e for e in errors), errors
