"""The fault run: a whole payout cycle while things break, then the money checked to the đồng.

On a fresh PostgreSQL database per service and a unique topic prefix on Kafka, it starts the bank
sandbox (injecting 5% timeouts, 2% 5xx, 1% duplicate and 1% reordered callbacks and 1% permanent
failures; and, after it has taken a money-moving request, 2% gateway errors (504, then 502 from
half way), 1% 2xx bodies cut short, 1% answers slower than the submitting worker's lease, and a
409 for half the resends of a request already taken; the ISO file bank books each file as one
batch debit, sends 2% of its entries pending first, reverses 0.5% of its booked debits and returns
1% later as credits), the payout API (it takes the sandbox's callbacks), `--worker-processes` payout worker
processes (outbox relay, submission, status sweeper), and reporting's API and worker, all as
subprocesses under a small supervisor. It loads `--installments` entitlements with verified
accounts (as the payout benchmark does), starts the period's cycle, and while it runs kills payout
workers with SIGKILL `--kills` times (each is started again at once), restarts the Kafka broker
and PostgreSQL (`scripts/kafka.sh restart`, `scripts/postgres.sh restart`), at moments spread
over the cycle by its progress.

Then it waits until every installment is final (or `--timeout`), the callbacks are idle, the
outbox is drained and reporting has applied every payment event, reconciles every counterparty
for every day of the run, and checks: installments by final state, no duplicate and no
end-to-end id credited twice in the sandbox's own ledger, no installment paid twice, no person
paid twice for one scheme and period (the sandbox's credits by their installment's person), none lost
(one installment per entitlement), the sandbox's credits == payout's ledger, each installment's
state == the sandbox's, failures carrying the bank's reason, reconciliation clean, reporting's
totals == payout's ledger == the sandbox's ledger, the money that came back (returns and
reversals) equal in the sandbox's ledger, payout's and reporting's, the sandbox's ledger netting
what came back, every payment event applied by reporting (by event id) and none dead-lettered,
no payment anomaly but one per reversal after settlement, and no money without an approval of
exactly what left (the cycle is prepared, the sandbox has received nothing, a checker approves;
every entry the sandbox holds is of a batch an approval released, each approval releasing the
count and sum it names). Prints a table, writes
`bench/results/fault_run.json`, and exits 1 when a check fails. Each process logs to
`.run/fault_run/<run>/`, with the progress samples in `progress.json`; `--keep` leaves the run's
databases and topics behind to look at.

    .venv/bin/python bench/fault_run.py --installments 100000 --kills 10

Needs `scripts/infra.sh up` and root (the restarts run the infra scripts). It restarts the shared
PostgreSQL and Kafka: anything else using them at that moment sees the outage too.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.faults import checks as C
from bench.faults import infra
from bench.faults.processes import ServiceProcess, Supervisor
from bench.payout_bench import (
    KAFKA,
    PERIOD,
    PG,
    expected_sum,
    free_port,
    load,
    release_cycle,
    url_for,
    wait_http,
)
from shared.events.contracts import PAYMENT_TOPIC, dead_letter_topic
from tests.support import tokens
from tests.support.infra import drop_scratch_database
from tests.support.sandbox import SandboxAdmin

VN = ZoneInfo("Asia/Ho_Chi_Minh")
RESULT = ROOT / "bench" / "results" / "fault_run.json"
# What the sandbox injects (the figures). A held answer outlasts the payout's read
# timeout, so the payout sees a timeout after the bank has taken the batch. The ambiguous
# answers come after the bank has taken a money-moving request too: a gateway error, a 2xx body
# cut short, an answer slower than the submitting worker's lease; and a resend of a request
# already taken may be refused as a duplicate (409) although the bank has the payments.
FAULTS: dict[str, Any] = {
    "timeout_rate": 0.05,
    "error_5xx_rate": 0.02,
    "duplicate_callback_rate": 0.01,
    "reorder_callback_rate": 0.01,
    "permanent_failure_rate": 0.01,
    "error_after_accept_rate": 0.02,
    "error_after_accept_status": 504,
    "unreadable_answer_rate": 0.01,
    "slow_answer_rate": 0.01,
    "conflict_on_resend_rate": 0.5,
    # The ISO file bank writes as banks do: a file's transfers booked as one batch debit, NtryRef
    # on about half the entries, 2% of entries first sent pending, then booked; 0.5% of booked
    # debits reversed a few seconds later and 1% returned later still, as credits.
    "batch_booking": True,
    "ntry_ref_share": 0.5,
    "pending_first_rate": 0.02,
    "pending_seconds": 2.0,
    "reversal_rate": 0.005,
    "reversal_delay_seconds": 3.0,
    "late_return_rate": 0.01,
    "late_return_delay_seconds": 5.0,
}
OPEN_STATES = ("ON_HOLD", "SCHEDULED", "SUBMITTED")


@dataclass
class FaultRunConfig:
    installments: int = 100_000
    kills: int = 10
    kafka_restarts: int = 1
    postgres_restarts: int = 1
    worker_processes: int = 2
    batch_size: int = 500
    submit_concurrency: int = 4
    bank_read_timeout_seconds: float = 5.0
    timeout_hold_seconds: float = 8.0
    lease_seconds: float = 20.0
    status_inquiry_after_seconds: float = 20.0
    webhook_batch_size: int = 100
    latency_ms: int = 0
    faults: dict[str, Any] = field(default_factory=lambda: dict(FAULTS))
    # Half way through the cycle the gateway errors after acceptance change from 504 to 502.
    gateway_status_switch: tuple[int, int] = (504, 502)
    # Disruptions fire when this share of the installments is final, spread evenly between.
    first_disruption_at: float = 0.05
    last_disruption_at: float = 0.85
    min_gap_seconds: float = 5.0
    infra_order: tuple[str, ...] = ("kafka_restart", "postgres_restart")
    timeout: float = 3600.0
    settle_timeout: float = 600.0
    quiet_seconds: float = 30.0  # reporting applying nothing for this long has stopped
    run_dir: Path | None = None
    keep: bool = False  # keep the run's databases and topics to look at afterwards
    echo: Callable[[str], None] = field(default=functools.partial(print, flush=True))


def only_approved_money_left(
    received_before_approval: int,
    entries: list[C.SandboxEntry],
    stamped: dict[str, int | None],
    approvals: list[asyncpg.Record],
    released: dict[int, tuple[int, int]],
) -> C.Check:
    """No batch reached the sandbox before its approval, and no money left without an approval
    of exactly what left: the sandbox had received nothing when the cycle was prepared; every
    entry it holds is an attempt of a batch an approval released; each approval released the
    count and sum it names (what its batches carry, with what was taken out of them unsent)."""
    approved = {r["id"]: r for r in approvals if r["decision"] == "APPROVE"}
    unapproved = sorted(
        e.end_to_end_id for e in entries if stamped.get(e.end_to_end_id) not in approved
    )
    mismatched = {
        str(a_id): {"named": [int(r["count"]), int(r["amount"])], "released": released.get(a_id)}
        for a_id, r in approved.items()
        if released.get(a_id) != (int(r["count"]), int(r["amount"]))
    }
    return C.Check(
        "no money left without an approval of exactly what left",
        received_before_approval == 0 and not unapproved and not mismatched and bool(approved),
        0,
        len(unapproved) + len(mismatched) + received_before_approval,
        {
            "received_before_approval": received_before_approval,
            "approvals": len(approved),
            "entries_without_approval": unapproved[:20],
            "approvals_not_matching": mismatched,
        },
    )


def spread(kinds: list[str], first: float, last: float) -> list[tuple[str, float]]:
    """Evenly over [first, last] by share of installments final (one kind: the middle)."""
    if len(kinds) == 1:
        return [(kinds[0], round((first + last) / 2, 4))]
    step = (last - first) / max(1, len(kinds) - 1)
    return [(kind, round(first + step * n, 4)) for n, kind in enumerate(kinds)]


def plan_disruptions(
    config: FaultRunConfig,
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Two schedules of (kind, share of installments final at which it fires): the worker kills,
    and the infrastructure restarts in `infra_order` (one after the other, each waited for).
    They run side by side: a worker may well be killed while the broker is down."""
    kills = spread(["kill"] * config.kills, config.first_disruption_at, config.last_disruption_at)
    remaining = {
        "kafka_restart": config.kafka_restarts,
        "postgres_restart": config.postgres_restarts,
    }
    if set(config.infra_order) != set(remaining):
        raise ValueError(f"infra_order must name each of {sorted(remaining)} once")
    kinds: list[str] = []
    while any(remaining.values()):
        for kind in config.infra_order:
            if remaining[kind] > 0:
                kinds.append(kind)
                remaining[kind] -= 1
    width = config.last_disruption_at - config.first_disruption_at
    restarts = [
        (kind, round(config.first_disruption_at + width * (n + 1) / (len(kinds) + 1), 4))
        for n, kind in enumerate(kinds)
    ]
    return (kills if config.kills else []), restarts


class Progress:
    """Installments by state, read straight from payout's database every half second (and
    carried over while the database is down)."""

    def __init__(self, database: str, total: int) -> None:
        self.database = database
        self.total = total
        self.counts: dict[str, int] = {}
        self.samples: list[
            tuple[float, dict[str, int], dict[str, int]]
        ] = []  # installments, batches
        self.read_failures = 0
        self._conn: asyncpg.Connection | None = None

    @property
    def final(self) -> int:
        return sum(n for s, n in self.counts.items() if s not in OPEN_STATES)

    @property
    def share_final(self) -> float:
        return self.final / self.total if self.total else 1.0

    @property
    def complete(self) -> bool:
        return sum(self.counts.values()) == self.total and self.final == self.total

    async def read(self, at: float) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(database=self.database, timeout=5, **PG)
            rows = await self._conn.fetch(
                "SELECT state, count(*) FROM installments WHERE period = $1 GROUP BY state",
                PERIOD,
                timeout=30,
            )
            batch_rows = await self._conn.fetch(
                "SELECT state, count(*) FROM batches GROUP BY state", timeout=30
            )
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
            TimeoutError,
        ):
            # A read cut by the PostgreSQL restart leaves the connection mid-operation: drop it.
            self.read_failures += 1
            if self._conn is not None:
                self._conn.terminate()
            self._conn = None
            return
        self.counts = {state: int(n) for state, n in rows}
        self.samples.append(
            (round(at, 1), dict(self.counts), {state: int(n) for state, n in batch_rows})
        )

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()


async def fetch_all(database: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database=database, **PG)
    try:
        return await conn.fetch(query, *args, timeout=300)
    finally:
        await conn.close()


async def wait_for(
    check: Callable[[], Any], timeout: float, interval: float = 0.5
) -> tuple[bool, float]:
    """Poll an async check until it is true or `timeout`; (reached, seconds). Errors count as
    not yet (a service may still be reconnecting)."""
    started = time.monotonic()
    while True:
        try:
            if await check():
                return True, round(time.monotonic() - started, 2)
        except (httpx.HTTPError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass
        if time.monotonic() - started > timeout:
            return False, round(time.monotonic() - started, 2)
        await asyncio.sleep(interval)


class FaultRun:
    def __init__(self, config: FaultRunConfig) -> None:
        self.config = config
        self.tag = uuid.uuid4().hex[:8]
        self.run_dir = config.run_dir or ROOT / ".run" / "fault_run" / self.tag
        self.payout_db = f"fault_payout_{self.tag}"
        self.reporting_db = f"fault_reporting_{self.tag}"
        self.prefix = f"fault-{self.tag}."
        self.ports = {"sandbox": free_port(), "payout": free_port(), "reporting": free_port()}
        self.supervisor = Supervisor()
        self.received_before_approval = -1  # the sandbox's entries when the cycle was prepared
        self.disruptions: list[dict[str, Any]] = []
        self.timings: dict[str, float] = {}
        self.loads: list[float] = []
        self.echo = config.echo
        # A slow counterparty answers after the submitting worker's lease has run out, and the
        # worker waits for it (its read timeout is longer still); a held answer (the timeout
        # fault) outlasts even that read timeout.
        self.slow_answer_seconds = round(config.lease_seconds * 1.5, 2)
        self.read_timeout = max(config.bank_read_timeout_seconds, self.slow_answer_seconds + 2)
        self.timeout_hold = max(config.timeout_hold_seconds, self.read_timeout + 2)

    def faults(self, share_final: float = 0.0) -> dict[str, Any]:
        """What the sandbox injects at this point of the cycle."""
        c = self.config
        faults = {**c.faults, "timeout_hold_seconds": self.timeout_hold, "latency_ms": c.latency_ms}
        if faults.get("slow_answer_rate"):
            faults["slow_answer_seconds"] = self.slow_answer_seconds
        if faults.get("error_after_accept_rate"):
            first, second = c.gateway_status_switch
            faults["error_after_accept_status"] = first if share_final < 0.5 else second
        return faults

    # -- setup --------------------------------------------------------------------------------

    def payout_env(self) -> dict[str, str]:
        c = self.config
        return {
            **os.environ,
            "PAYOUT_DATABASE_URL": url_for(self.payout_db),
            "PAYOUT_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "PAYOUT_TOPIC_PREFIX": self.prefix,
            "PAYOUT_PORT": str(self.ports["payout"]),
            "PAYOUT_BANK_BASE_URL": f"http://127.0.0.1:{self.ports['sandbox']}",
            **tokens.env("payout"),
            "PAYOUT_SCHEDULER_ENABLED": "false",
            "PAYOUT_LOG_LEVEL": "WARNING",
            "PAYOUT_BATCH_SIZE": str(c.batch_size),
            "PAYOUT_SUBMIT_CONCURRENCY": str(c.submit_concurrency),
            "PAYOUT_BANK_READ_TIMEOUT_SECONDS": str(self.read_timeout),
            "PAYOUT_LEASE_SECONDS": str(c.lease_seconds),
            "PAYOUT_STATUS_INQUIRY_AFTER_SECONDS": str(c.status_inquiry_after_seconds),
            "PAYOUT_RETRY_BASE_SECONDS": "0.5",
            "PAYOUT_RETRY_MAX_SECONDS": "10",
        }

    def reporting_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REPORTING_DATABASE_URL": url_for(self.reporting_db),
            "REPORTING_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "REPORTING_TOPIC_PREFIX": self.prefix,
            "REPORTING_PORT": str(self.ports["reporting"]),
            "REPORTING_LOG_LEVEL": "WARNING",
        }

    def process(self, name: str, argv: list[str], env: dict[str, str]) -> ServiceProcess:
        return self.supervisor.add(
            ServiceProcess(name, argv, env, self.run_dir / f"{name}.log", ROOT)
        )

    async def start_services(self) -> None:
        py = sys.executable
        c = self.config
        self.process(
            "sandbox",
            [
                py,
                "-m",
                "services.sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports["sandbox"]),
                "--callback-base",
                f"http://127.0.0.1:{self.ports['payout']}",
                "--webhook-batch-size",
                str(c.webhook_batch_size),
                "--log-level",
                "warning",
            ],
            dict(os.environ),
        )
        self.process("payout-api", [py, "-m", "services.payout", "api"], self.payout_env())
        self.process("reporting-api", [py, "-m", "services.reporting", "api"], self.reporting_env())
        self.process(
            "reporting-worker", [py, "-m", "services.reporting", "worker"], self.reporting_env()
        )
        # Entitlements and verified accounts are loaded straight into the tables, so no intake
        # consumer and no verification run; every worker relays, submits and sweeps.
        roles = '["relay", "submission", "sweeper"]'
        for n in range(c.worker_processes):
            self.process(
                f"payout-worker-{n}",
                [py, "-m", "services.payout", "worker"],
                {**self.payout_env(), "PAYOUT_WORKER_ROLES": roles},
            )
        await wait_http(f"http://127.0.0.1:{self.ports['sandbox']}/health", 60)
        await wait_http(f"http://127.0.0.1:{self.ports['payout']}/healthz", 60)
        await wait_http(f"http://127.0.0.1:{self.ports['reporting']}/healthz", 60)

    # -- disruptions --------------------------------------------------------------------------

    async def disrupt(
        self, progress: Progress, cycle_started: float, sandbox: SandboxAdmin
    ) -> None:
        kills, restarts = plan_disruptions(self.config)
        await asyncio.gather(
            self._follow(kills, progress, cycle_started),
            self._follow(restarts, progress, cycle_started),
            self._switch_gateway_status(progress, sandbox),
        )

    async def _switch_gateway_status(self, progress: Progress, sandbox: SandboxAdmin) -> None:
        first, second = self.config.gateway_status_switch
        if not self.config.faults.get("error_after_accept_rate") or first == second:
            return
        while progress.share_final < 0.5:
            await asyncio.sleep(0.2)
        await sandbox.set_faults(**self.faults(progress.share_final))
        self.echo(f"  gateway errors after acceptance now answer {second}")

    async def _follow(
        self, plan: list[tuple[str, float]], progress: Progress, cycle_started: float
    ) -> None:
        c = self.config
        last = 0.0
        victims = [f"payout-worker-{n}" for n in range(c.worker_processes)]
        kills = 0
        for kind, share in plan:
            while progress.share_final < share or time.monotonic() - last < c.min_gap_seconds:
                await asyncio.sleep(0.2)
            record: dict[str, Any] = {
                "kind": kind,
                "planned_at_share_final": share,
                "at_seconds": round(time.monotonic() - cycle_started, 1),
                "share_final": round(progress.share_final, 4),
                "open_installments": progress.total - progress.final,
                "load_1m": round(os.getloadavg()[0], 2),
            }
            began = time.monotonic()
            if kind == "kill":
                victim = victims[kills % len(victims)]
                while not self.supervisor.processes[victim].running:  # being started again
                    await asyncio.sleep(0.2)
                kills += 1
                ended = self.supervisor.kill(victim)
                record.update(target=victim, pid=ended.pid, exit_code=ended.code)
            else:
                run = await infra.restart(kind, self.run_dir / "infra.log")
                record.update(returncode=run.returncode)
                if run.returncode != 0:
                    self.echo(
                        f"  {kind} FAILED (exit {run.returncode}); see {self.run_dir / 'infra.log'}"
                    )
                record["healthy_after_seconds"] = await infra.wait_healthy()
            record["seconds"] = round(time.monotonic() - began, 2)
            last = time.monotonic()
            self.disruptions.append(record)
            self.echo(
                f"  {record['at_seconds']:>7.1f}s  {kind:<17} {record.get('target', ''):<16} "
                f"final {record['share_final']:.1%}  took {record['seconds']}s"
            )

    def disruptions_done(self) -> dict[str, int]:
        done = {"kill": 0, "kafka_restart": 0, "postgres_restart": 0}
        for record in self.disruptions:
            if record["kind"] == "kill" or record.get("returncode") == 0:
                done[record["kind"]] += 1
        return done

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        c = self.config
        t_run = time.monotonic()
        self.loads.append(os.getloadavg()[0])
        admin = await asyncpg.connect(database="postgres", **PG)
        for name in (self.payout_db, self.reporting_db):
            await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        watch_stop = asyncio.Event()
        watcher: asyncio.Task | None = None
        try:
            for service in ("payout", "reporting"):
                env = self.payout_env() if service == "payout" else self.reporting_env()
                migrated = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", f"services.{service}", "migrate", cwd=ROOT, env=env
                )
                if await migrated.wait() != 0:
                    raise RuntimeError(f"{service} migrations failed")
            t0 = time.monotonic()
            await self.start_services()
            sandbox_url = f"http://127.0.0.1:{self.ports['sandbox']}"
            sandbox = SandboxAdmin(sandbox_url, httpx.AsyncClient(timeout=300))
            self.timings["start_services"] = round(time.monotonic() - t0, 2)

            # The entitlements and methods into payout's tables, the accounts into the sandbox.
            t0 = time.monotonic()
            conn = await asyncpg.connect(database=self.payout_db, **PG)
            try:
                async with httpx.AsyncClient(base_url=sandbox_url, timeout=300) as bank:
                    await load(conn, bank, c.installments, self.tag[:4])
            finally:
                await conn.close()
            expected = expected_sum(c.installments)
            await sandbox.set_faults(**self.faults())
            self.timings["load_entitlements_and_accounts"] = round(time.monotonic() - t0, 2)
            watcher = asyncio.ensure_future(self.supervisor.watch(watch_stop))

            token = tokens.token(
                {"payout:operate", "payout:read", "cycles:prepare", "envelopes:write"},
                sub="fault-run",
            )
            api = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.ports['payout']}",
                timeout=600,
                headers={"Authorization": f"Bearer {token}"},
            )
            reporting = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.ports['reporting']}", timeout=120
            )
            self.echo(
                f"fault run {self.tag}: {c.installments:,} installments, {c.kills} kills, "
                f"{c.kafka_restarts} Kafka and {c.postgres_restarts} PostgreSQL restarts; logs in {self.run_dir}"
            )
            try:
                result = await self.cycle(api, reporting, sandbox, expected)
            finally:
                await api.aclose()
                await reporting.aclose()
                await sandbox.aclose()
        finally:
            watch_stop.set()
            if watcher is not None:
                await watcher
            self.supervisor.stop_all()
            await self.cleanup()
        result["timings_seconds"]["total"] = round(time.monotonic() - t_run, 2)
        return result

    async def cycle(
        self,
        api: httpx.AsyncClient,
        reporting: httpx.AsyncClient,
        sandbox: SandboxAdmin,
        expected_sum: int,
    ) -> dict[str, Any]:
        c = self.config
        progress = Progress(self.payout_db, c.installments)
        first_day = datetime.now(UTC).astimezone(VN).date()
        t_cycle = time.monotonic()
        started = await api.post("/v1/cycles", json={"period": PERIOD})
        started.raise_for_status()
        self.timings["start_cycle_api_call"] = round(time.monotonic() - t_cycle, 2)
        # Prepared, nothing sent: the sandbox has received nothing until the approval.
        self.received_before_approval = int(
            (await sandbox.ledger_entries(limit=1, offset=0))["total"]
        )
        conn = await asyncpg.connect(database=self.payout_db, **PG)
        try:
            self.timings.update(
                {f"{k}_seconds": v for k, v in (await release_cycle(api, conn, PERIOD)).items()}
            )
        finally:
            await conn.close()
        self.timings["prepared_and_approved"] = round(time.monotonic() - t_cycle, 2)
        disrupting = asyncio.ensure_future(self.disrupt(progress, t_cycle, sandbox))
        marks: dict[str, float] = {}
        try:
            while True:
                now = time.monotonic() - t_cycle
                await progress.read(now)
                self.loads.append(os.getloadavg()[0])
                if progress.final and "first_final" not in marks:
                    marks["first_final"] = now
                if progress.complete and "all_final" not in marks:
                    marks["all_final"] = now
                if disrupting.done():
                    disrupting.result()  # a failed disruption stops the run here
                    if progress.complete:
                        break
                if now > c.timeout:
                    self.echo(f"  gave up after {c.timeout:.0f}s: {progress.counts}")
                    break
                await asyncio.sleep(0.5)
        finally:
            if not disrupting.done():
                disrupting.cancel()
                await asyncio.gather(disrupting, return_exceptions=True)
            await progress.close()
        self.timings["first_final_after_cycle_start"] = round(marks.get("first_final", -1), 2)
        self.timings["all_final_after_cycle_start"] = round(marks.get("all_final", -1), 2)
        self.timings["cycle_and_disruptions"] = round(time.monotonic() - t_cycle, 2)
        (self.run_dir / "progress.json").write_text(json.dumps(progress.samples))
        self.echo(f"  cycle over after {self.timings['cycle_and_disruptions']}s: {progress.counts}")

        # Let everything come to rest: callbacks delivered, outbox published, reporting caught up.
        async def callbacks_idle() -> bool:
            return bool((await sandbox.webhooks())["idle"])

        _, self.timings["callbacks_idle"] = await wait_for(callbacks_idle, c.settle_timeout)

        async def outbox_pending() -> int:
            rows = await fetch_all(
                self.payout_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return int(rows[0][0])

        async def drained() -> bool:
            return await outbox_pending() == 0

        _, self.timings["outbox_drained"] = await wait_for(drained, c.settle_timeout)
        payment_events = int(
            (
                await fetch_all(
                    self.payout_db, "SELECT count(*) FROM outbox WHERE topic = $1", PAYMENT_TOPIC
                )
            )[0][0]
        )

        async def applied() -> int:
            response = await reporting.get("/v1/freshness")
            response.raise_for_status()
            return int(response.json()["events_applied"])

        seen = {"applied": -1, "since": time.monotonic()}

        async def caught_up() -> bool:
            """All applied, or nothing applied for a while (an event reporting will never apply
            must not hold the run until the timeout)."""
            now_applied = await applied()
            if now_applied != seen["applied"]:
                seen.update(applied=now_applied, since=time.monotonic())
            return (
                now_applied >= payment_events or time.monotonic() - seen["since"] > c.quiet_seconds
            )

        _, self.timings["reporting_caught_up"] = await wait_for(caught_up, c.settle_timeout)
        published = {
            r[0]: r[1]
            for r in await fetch_all(
                self.payout_db,
                "SELECT event_id, event_type FROM outbox WHERE topic = $1",
                PAYMENT_TOPIC,
            )
        }
        applied_ids = {
            r[0]
            for r in await fetch_all(
                self.reporting_db,
                "SELECT event_id FROM processed_messages WHERE consumer LIKE 'reporting.projections%'",
            )
        }
        missing = sorted(
            f"{published[e].split('.')[3]} {e}" for e in published.keys() - applied_ids
        )
        dead = await infra.dead_letters(KAFKA, self.prefix + dead_letter_topic(PAYMENT_TOPIC))

        t0 = time.monotonic()
        payout_ledger = (
            (await api.get("/v1/ledger", params={"period": PERIOD})).raise_for_status().json()
        )
        runs = await self.reconcile(api, payout_ledger, first_day)
        self.timings["reconciliation"] = round(time.monotonic() - t0, 2)

        t0 = time.monotonic()
        installments = [
            C.Installment(
                int(r["id"]),
                r["entitlement_id"],
                r["state"],
                int(r["amount"]),
                r["counterparty"],
                int(r["attempt_no"]),
                r["reason_code"],
                r["reason_text"],
                r["beneficiary_id"],
                r["scheme"],
                r["period"],
            )
            for r in await fetch_all(
                self.payout_db,
                """
                SELECT id, entitlement_id, state, amount, counterparty, attempt_no, reason_code, reason_text,
                       beneficiary_id, scheme, period
                FROM installments WHERE period = $1""",
                PERIOD,
            )
        ]
        bank_ledger = await sandbox.ledger()
        entries: list[C.SandboxEntry] = []
        while True:
            page = await sandbox.ledger_entries(limit=10_000, offset=len(entries))
            entries += [C.SandboxEntry.from_api(row) for row in page["entries"]]
            if not page["entries"] or len(entries) >= page["total"]:
                break
        anomalies = {
            r[0]: int(r[1])
            for r in await fetch_all(
                self.payout_db, "SELECT kind, count(*) FROM payment_anomalies GROUP BY kind"
            )
        }
        batch_stats = dict(
            (
                await fetch_all(
                    self.payout_db,
                    """
            SELECT count(*) AS batches, coalesce(sum(attempts), 0) AS sends, coalesce(sum(inquiries), 0) AS inquiries,
                   count(*) FILTER (WHERE attempts > 1) AS resent, count(*) FILTER (WHERE inquiries > 0) AS inquired
            FROM batches""",
                )
            )[0]
        )
        callbacks = dict(
            (
                await fetch_all(
                    self.payout_db,
                    """
            SELECT count(*) AS events_kept, count(DISTINCT delivery_id) AS deliveries FROM callback_events""",
                )
            )[0]
        )
        figures = (
            (await reporting.get("/v1/kpis", params={"period": PERIOD}))
            .raise_for_status()
            .json()["figures"]
        )
        freshness = (await reporting.get("/v1/freshness")).raise_for_status().json()
        pending = await outbox_pending()
        webhooks = await sandbox.webhooks()
        self.timings["collect"] = round(time.monotonic() - t0, 2)

        requested = {
            "kill": c.kills,
            "kafka_restart": c.kafka_restarts,
            "postgres_restart": c.postgres_restarts,
        }
        approvals = await fetch_all(
            self.payout_db,
            "SELECT id, decision, count, amount, decided_at FROM cycle_approvals WHERE period = $1",
            PERIOD,
        )
        stamped = {
            r["end_to_end_id"]: r["approval_id"]
            for r in await fetch_all(
                self.payout_db,
                """
                SELECT a.end_to_end_id, b.approval_id FROM payment_attempts a
                LEFT JOIN batches b ON b.batch_id = a.batch_id""",
            )
        }
        released = {
            r["approval_id"]: (int(r["count"]), int(r["amount"]))
            for r in await fetch_all(
                self.payout_db,
                """
                SELECT b.approval_id, count(a.id) + max(w.withdrawn_count) AS count,
                       coalesce(sum(a.amount), 0) + max(w.withdrawn_sum) AS amount
                FROM batches b
                JOIN (SELECT approval_id, sum(withdrawn_count) AS withdrawn_count,
                             sum(withdrawn_sum) AS withdrawn_sum
                      FROM batches WHERE approval_id IS NOT NULL GROUP BY approval_id) w
                  ON w.approval_id = b.approval_id
                LEFT JOIN payment_attempts a ON a.batch_id = b.batch_id
                WHERE b.approval_id IS NOT NULL
                GROUP BY b.approval_id""",
            )
        }
        results = [
            only_approved_money_left(
                self.received_before_approval, entries, stamped, approvals, released
            ),
            C.all_final(installments),
            C.none_lost(installments, c.installments),
            C.no_duplicates_at_the_bank(bank_ledger, entries),
            C.no_end_to_end_id_credited_twice(bank_ledger, entries),
            C.no_installment_paid_twice(entries),
            C.one_payment_per_person_scheme_and_period(installments, entries),
            C.money_to_the_dong(entries, payout_ledger),
            C.states_agree(installments, entries),
            C.failures_explained(installments, entries),
            C.reconciliation_clean(runs, entries),
            C.reporting_equal(figures, payout_ledger, entries),
            C.money_back_to_the_dong(installments, entries, payout_ledger, figures),
            C.sandbox_ledger_nets(bank_ledger, entries),
            C.no_anomalies(anomalies, C.expected_anomalies(installments, entries)),
            C.events_applied(pending, missing, payment_events),
            C.no_dead_letters(dead),
            C.disruptions_done(requested, self.disruptions_done()),
        ]
        paid_count, paid_sum = C.bank_paid(entries)
        back = C.money_back(installments, entries)
        unplanned = self.supervisor.unplanned()
        return {
            "run": "fault run: payout cycle under injected faults, kills and restarts",
            "tag": self.tag,
            "ok": all(check.ok for check in results),
            "installments": c.installments,
            "states": C.states(installments),
            "money": {
                "entitlements_sum": expected_sum,
                "payout_ledger_settled": {
                    "count": payout_ledger["settled_count"],
                    "sum": payout_ledger["settled_sum"],
                },
                "sandbox_paid": {"count": paid_count, "sum": paid_sum},
                "sandbox_ledger": {
                    k: bank_ledger[k]
                    for k in (
                        "credits",
                        "total_credited",
                        "returned",
                        "total_returned",
                        "reversed",
                        "total_reversed",
                        "net_credited",
                        "duplicates",
                        "transfers",
                    )
                },
                "sandbox_back": {
                    "count": len(back),
                    "sum": sum(e.amount for e in back),
                    "reversed": sum(1 for e in back if e.status == "REVERSED"),
                },
                "reporting": {
                    k: figures[k]
                    for k in (
                        "paid_count",
                        "paid_amount",
                        "failed_count",
                        "failed_amount",
                        "returned_count",
                        "returned_amount",
                        "pending_count",
                    )
                },
                "payout_ledger_by_counterparty": payout_ledger["counterparties"],
            },
            "checks": [check.as_dict() for check in results],
            "disruptions": {
                "requested": requested,
                "done": self.disruptions_done(),
                "events": self.disruptions,
                "processes_started": {
                    name: p.starts for name, p in self.supervisor.processes.items()
                },
                "unplanned_exits": [
                    {"name": e.name, "code": e.code, "at_s": e.at_s} for e in unplanned
                ],
            },
            "faults": {
                "injected_rates": self.faults(),
                "gateway_status_switch": list(c.gateway_status_switch),
                "sandbox_webhooks": webhooks,
                "payout_batches": batch_stats,
                "payout_callbacks": callbacks,
                "reconciliation_runs": len(runs),
                "reporting_events_applied": int(freshness["events_applied"]),
            },
            "timings_seconds": self.timings,
            "settings": {
                "batch_size": c.batch_size,
                "worker_processes": c.worker_processes,
                "submit_concurrency": c.submit_concurrency,
                "lease_seconds": c.lease_seconds,
                "bank_read_timeout_seconds": self.read_timeout,
                "slow_answer_seconds": self.slow_answer_seconds,
                "timeout_hold_seconds": self.timeout_hold,
                "status_inquiry_after_seconds": c.status_inquiry_after_seconds,
                "webhook_batch_size": c.webhook_batch_size,
                "topic_prefix": self.prefix,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_1m_at_start": round(self.loads[0], 2),
                "load_average_1m_max": round(max(self.loads), 2),
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            },
            "progress_samples": progress.samples[:: max(1, len(progress.samples) // 60)],
            "progress_read_failures": progress.read_failures,
            "measured_at": datetime.now(UTC).isoformat(),
        }

    async def reconcile(
        self, api: httpx.AsyncClient, payout_ledger: dict[str, Any], first_day: Any
    ) -> list[C.ReconciliationRun]:
        """Every counterparty, every Vietnam day the run touched."""
        last_day = datetime.now(UTC).astimezone(VN).date()
        days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
        runs: list[C.ReconciliationRun] = []
        for counterparty in sorted(row["counterparty"] for row in payout_ledger["counterparties"]):
            for day in days:
                response = await api.post(
                    "/v1/reconciliations",
                    json={"counterparty": counterparty, "date": day.isoformat()},
                )
                response.raise_for_status()
                body = response.json()
                lines: list[C.ReconciliationLine] = []
                for kind, count in body["summary"]["counts"].items():
                    if kind == "MATCHED" or not count:
                        continue
                    cursor = None
                    while True:
                        params = {
                            "kind": kind,
                            "limit": 500,
                            **({"cursor": cursor} if cursor else {}),
                        }
                        response = await api.get(f"/v1/reconciliations/{body['id']}", params=params)
                        page = response.raise_for_status().json()
                        lines += [
                            C.ReconciliationLine(
                                line["kind"],
                                line["end_to_end_id"],
                                line["our_state"],
                                line["bank_status"],
                            )
                            for line in page["lines"]
                        ]
                        cursor = page["next_cursor"]
                        if not cursor:
                            break
                runs.append(
                    C.ReconciliationRun(
                        counterparty, day.isoformat(), body["summary"], tuple(lines)
                    )
                )
        return runs

    async def cleanup(self) -> None:
        """Drop the run's databases and topics (the infrastructure may have just restarted)."""
        await infra.wait_healthy()
        if self.config.keep:
            self.echo(
                f"  kept databases {self.payout_db}, {self.reporting_db} and topics {self.prefix}*"
            )
            return
        admin = await asyncpg.connect(database="postgres", **PG)
        try:
            for name in (self.payout_db, self.reporting_db):
                await drop_scratch_database(admin, name)
        finally:
            await admin.close()
        kafka = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await kafka.start()
        try:
            ours = [t for t in await kafka.list_topics() if t.startswith(self.prefix)]
            if ours:
                await kafka.delete_topics(ours)
        finally:
            await kafka.close()


async def fault_run(config: FaultRunConfig) -> dict[str, Any]:
    return await FaultRun(config).run()


def table(result: dict[str, Any]) -> str:
    """The run as a plain-text table."""
    rows: list[tuple[str, str]] = []
    rows.append(("installments", f"{result['installments']:,}"))
    for state, count in result["states"].items():
        rows.append((f"  {state}", f"{count:,}"))
    money = result["money"]
    settled, bank, reported = (
        money["payout_ledger_settled"],
        money["sandbox_paid"],
        money["reporting"],
    )
    rows.append(("payout ledger settled", f"{settled['count']:,}  {settled['sum']:,} VND"))
    rows.append(("sandbox paid (credited, kept)", f"{bank['count']:,}  {bank['sum']:,} VND"))
    rows.append(("reporting paid", f"{reported['paid_count']:,}  {reported['paid_amount']:,} VND"))
    back = money.get("sandbox_back", {"count": 0, "sum": 0, "reversed": 0})
    rows.append(
        (
            "sandbox money back (of which reversed)",
            f"{back['count']:,}  {back['sum']:,} VND ({back['reversed']})",
        )
    )
    rows.append(
        (
            "reporting returned",
            f"{reported['returned_count']:,}  {reported['returned_amount']:,} VND",
        )
    )
    rows.append(("sandbox duplicates", str(money["sandbox_ledger"]["duplicates"])))
    d = result["disruptions"]
    for kind, label in (
        ("kill", "worker SIGKILLs"),
        ("kafka_restart", "Kafka restarts"),
        ("postgres_restart", "PostgreSQL restarts"),
    ):
        rows.append((label, f"{d['done'][kind]} of {d['requested'][kind]}"))
    rows.append(("unplanned process exits", str(len(d["unplanned_exits"]))))
    batches, webhooks = result["faults"]["payout_batches"], result["faults"]["sandbox_webhooks"]
    rows.append(
        (
            "batches / sends / claimed for inquiry",
            f"{batches['batches']} / {batches['sends']} / {batches['inquired']}",
        )
    )
    rows.append(
        (
            "duplicate / reordered callbacks",
            f"{webhooks['duplicate_deliveries']} / {webhooks['reordered_deliveries']}",
        )
    )
    for name, seconds in result["timings_seconds"].items():
        rows.append((f"time: {name}", f"{seconds} s"))
    m = result["machine"]
    rows.append(
        (
            "load average 1m start / max / end",
            f"{m['load_average_1m_at_start']} / {m['load_average_1m_max']} / {m['load_average_1m_at_end']}",
        )
    )
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    for check in result["checks"]:
        lines.append(
            f"{'PASS' if check['ok'] else 'FAIL'}  {check['name']}"
            + ("" if check["ok"] else f"  expected {check['expected']}, found {check['found']}")
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--installments", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kafka-restarts", type=int, default=1)
    parser.add_argument("--postgres-restarts", type=int, default=1)
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--submit-concurrency", type=int, default=4)
    parser.add_argument(
        "--min-gap", type=float, default=5.0, help="seconds between two disruptions at least"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="give up on the cycle after this many seconds"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's databases and topics")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    config = FaultRunConfig(
        installments=args.installments,
        kills=args.kills,
        kafka_restarts=args.kafka_restarts,
        postgres_restarts=args.postgres_restarts,
        worker_processes=args.worker_processes,
        batch_size=args.batch_size,
        submit_concurrency=args.submit_concurrency,
        min_gap_seconds=args.min_gap,
        timeout=args.timeout,
        keep=args.keep,
    )
    result = asyncio.run(fault_run(config))
    print(table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {args.output}")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
