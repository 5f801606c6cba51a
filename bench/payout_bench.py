"""Benchmark: a whole payout cycle, from its release to the last installment counted in
reporting, on the real stack.

Starts the bank sandbox (a real HTTP server), the payout API (it receives the sandbox's signed
callbacks), the payout's outbox relay in a process of its own and `--worker-processes` payout
worker processes (submission, status sweeper), and reporting's API and worker, each service on
its own fresh PostgreSQL database and the run's own Kafka topics. Loads `--installments`
entitlements whose accounts are already verified (straight into the tables, in chunks, and the
accounts into the sandbox), releases the cycle through the API and measures until reporting's
`/v1/kpis` counts every installment paid. No wall-clock limit: the run ends when reporting has
counted them all, or when nothing has moved for `--stall-seconds` (then it says so).

Then it checks the money: reporting's paid sum = payout's ledger = the sandbox's credits, to the
đồng, with no duplicate credit; and it measures reporting's lag: each settlement's commit in
payout (its outbox row's time) against the first `/v1/kpis` poll (every 200 ms) that counts it.
The peak RSS of every process is sampled from /proc, and so is the CPU each one used during the
measured window, PostgreSQL's and Kafka's included (`cpu`): milliseconds per installment per
process, how busy the machine was, and the rate the machine would allow if the run were bound by
CPU alone (cores x seconds / CPU per installment), the ceiling the figure is compared with. It is
a measurement, not a test: it never fails on the figures. Writes `--output` (JSON).

    .venv/bin/python bench/payout_bench.py --installments 100000 --worker-processes 2

Needs `scripts/infra.sh up` (PostgreSQL on 127.0.0.1:5432, Kafka on 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from array import array
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from shared.events.contracts import (
    CONTRACT_BY_MODEL,
    MAX_VND_TOTAL,
    PaymentPaidInCash,
    PaymentSettled,
)
from shared.vn_text import fold
from tests.support import tokens
from tests.support.infra import drop_scratch_database

PG = {
    "host": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("BENCH_PG_PORT", "5432")),
    "user": os.environ.get("BENCH_PG_USER", "benefits"),
    "password": os.environ.get("BENCH_PG_PASSWORD", "benefits"),
}
KAFKA = os.environ.get("BENCH_KAFKA", "127.0.0.1:9092")
PERIOD = "2031-06"
# Where the money goes: NAPAS-style banks, one ISO 20022 bank (Agribank) and the post office.
SPLIT = [
    ("970436", 22),
    ("970418", 20),
    ("970415", 18),
    ("970405", 15),
    ("970407", 10),
    ("970422", 10),
    ("VNPOST", 5),
]
SURNAMES = ["Nguyễn Văn", "Trần Thị", "Lê Đức", "Phạm Thị", "Đỗ Văn", "Hoàng Thị", "Vũ Minh"]
GIVEN = ["Ánh", "Đức", "Hương", "Bình", "Thảo", "Dũng", "Lan", "Hùng"]
LOAD_CHUNK = 50_000  # rows per COPY and accounts per sandbox request while loading
SETTLED_EVENTS = [CONTRACT_BY_MODEL[m].type for m in (PaymentSettled, PaymentPaidInCash)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_for(database: str) -> str:
    return (
        f"postgresql+asyncpg://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{database}"
    )


async def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


def counterparty_of(i: int) -> str:
    """The counterparty of installment `i`, in a fixed mix."""
    slot = i % sum(w for _, w in SPLIT)
    for counterparty, weight in SPLIT:
        if slot < weight:
            return counterparty
        slot -= weight
    raise AssertionError("unreachable")


def amount_of(i: int) -> int:
    return 1_500_000 + 1_000 * (i % 997)


def expected_sum(n: int) -> int:
    return sum(amount_of(i) for i in range(n))


B_COLUMNS = [
    "beneficiary_id",
    "full_name",
    "commune_code",
    "commune_list_date",
    "registered_at",
    "updated_at",
]
E_COLUMNS = [
    "entitlement_id",
    "beneficiary_id",
    "scheme",
    "agency",
    "decision_number",
    "amount",
    "schedule_kind",
    "start_period",
    "installments",
    "end_period",
    "stop_period",
    "stop_reason",
    "commune_code",
    "commune_list_date",
    "granted_at",
    "updated_at",
]
M_COLUMNS = [
    "beneficiary_id",
    "method_id",
    "method",
    "bank_bin",
    "account_number",
    "account_holder_name",
    "verified_name",
    "representative_name",
    "representative_valid_from",
    "representative_valid_until",
    "cash_reason",
    "status",
    "status_reason",
    "changed_at",
    "verified_at",
    "updated_at",
]


async def load(conn: asyncpg.Connection, sandbox: httpx.AsyncClient, n: int, tag: str) -> None:
    """Beneficiaries, entitlements and verified methods into payout's tables, and the accounts
    into the sandbox, `LOAD_CHUNK` at a time (so the benchmark's own memory stays flat)."""
    now = datetime.now(UTC)
    listed = date(2023, 5, 7)
    for start in range(0, n, LOAD_CHUNK):
        rows_b, rows_e, rows_m, accounts = [], [], [], []
        for i in range(start, min(n, start + LOAD_CHUNK)):
            counterparty, amount = counterparty_of(i), amount_of(i)
            name = f"{SURNAMES[i % 7]} {GIVEN[(i // 7) % 8]}"
            bid, eid = f"B{tag}{i:07d}", f"E{tag}{i:07d}"
            rows_b.append((bid, name, "09154", listed, now, now))
            rows_e.append(
                (
                    eid,
                    bid,
                    "PENSION",
                    "BHXH",
                    f"QD-{eid}",
                    amount,
                    "OPEN_MONTHLY",
                    "2031-01",
                    None,
                    None,
                    None,
                    None,
                    "09154",
                    listed,
                    now,
                    now,
                )
            )
            if counterparty == "VNPOST":
                rows_m.append(
                    (
                        bid,
                        f"M{tag}{i}",
                        "CASH_POST_OFFICE",
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        "cannot transact",
                        "VERIFIED",
                        None,
                        now,
                        now,
                        now,
                    )
                )
                continue
            account = f"{1000000000 + i}"
            rows_m.append(
                (
                    bid,
                    f"M{tag}{i}",
                    "OWN_ACCOUNT",
                    counterparty,
                    account,
                    name,
                    fold(name),
                    None,
                    None,
                    None,
                    None,
                    "VERIFIED",
                    None,
                    now,
                    now,
                    now,
                )
            )
            accounts.append(
                {
                    "bin": counterparty,
                    "account_number": account,
                    "holder_name": name,
                    "status": "ACTIVE",
                }
            )
        await conn.copy_records_to_table("beneficiaries", records=rows_b, columns=B_COLUMNS)
        await conn.copy_records_to_table("entitlements", records=rows_e, columns=E_COLUMNS)
        await conn.copy_records_to_table("payment_methods", records=rows_m, columns=M_COLUMNS)
        (await sandbox.post("/admin/accounts", json=accounts)).raise_for_status()
    await conn.execute("ANALYZE")


# -- processes and their memory ---------------------------------------------------------------


class Processes:
    """The services of the run, by name; their peak RSS sampled from /proc (a process and its
    children: uvicorn's workers, if any, count on their own)."""

    def __init__(self) -> None:
        self.running: dict[str, subprocess.Popen] = {}
        self.peak_mb: dict[str, float] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(argv, cwd=ROOT, env=env)
        self.running[name] = process
        return process

    def pid(self, name: str) -> int:
        return self.running[name].pid

    def sample(self) -> None:
        for name, process in self.running.items():
            for pid in [process.pid, *children(process.pid)]:
                rss = rss_mb(pid)
                if rss is not None and rss > self.peak_mb.get(name, 0.0):
                    self.peak_mb[name] = rss

    async def sample_until(self, stop: asyncio.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def stop_all(self) -> None:
        for process in self.running.values():
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cpu_of(pid: int, reaped: bool = False) -> float:
    """CPU seconds a process used (user and system), with its reaped children's if `reaped`."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _servers() -> dict[str, list[tuple[int, bool]]]:
    """PostgreSQL's and Kafka's processes: (pid, count its reaped children). The postmaster's
    reaped children are the backends that ended, so their CPU stays counted."""
    found: dict[str, list[tuple[int, bool]]] = {"postgres": [], "kafka": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
            comm = head.split("(", 1)[1]
            parent = int(tail.split()[1])
            with open(f"/proc/{parent}/comm") as f:
                parent_comm = f.read().strip()
            if comm == "java":
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"kafka" not in f.read():
                        continue
        except (OSError, IndexError, ValueError):
            continue
        if comm == "postgres":
            found["postgres"].append((int(entry), parent_comm != "postgres"))
        elif comm == "java":
            found["kafka"].append((int(entry), False))
    return found


def cpu_snapshot(procs: Processes) -> dict[str, float]:
    """CPU seconds used so far by each service of the run, PostgreSQL and Kafka."""
    out = {
        name: sum(_cpu_of(pid) for pid in [process.pid, *children(process.pid)])
        for name, process in procs.running.items()
    }
    for name, pids in _servers().items():
        out[name] = sum(_cpu_of(pid, reaped) for pid, reaped in pids)
    out["benchmark"] = _cpu_of(os.getpid())  # this process: the loads, the polling
    return out


def cpu_report(
    before: dict[str, float], after: dict[str, float], seconds: float, installments: int
) -> dict[str, Any]:
    """Where the machine's CPU went during the measured window, per installment, and how much of
    the machine's capacity (cores x seconds) the run used: the ceiling this benchmark meets."""
    used = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    total = sum(used.values())
    cores = os.cpu_count() or 1
    return {
        "seconds": {name: round(v, 1) for name, v in sorted(used.items())},
        "ms_per_installment": {
            name: round(1000 * v / installments, 3) for name, v in sorted(used.items())
        },
        "total_ms_per_installment": round(1000 * total / installments, 3),
        "share_of_machine": round(total / (cores * seconds), 3),
        "installments_per_second_if_cpu_bound": round(cores * installments / total, 1),
    }


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return found


# -- reporting's lag --------------------------------------------------------------------------


def percentile(values: array, share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def reporting_lag(committed: array, samples: list[tuple[float, int]]) -> array:
    """Each settlement's lag: the first poll of `/v1/kpis` whose paid count includes it, minus
    the commit of the k-th settlement in payout (`committed`, ascending epoch seconds): the
    distance between the two cumulative curves, which needs no order of application."""
    lags = array("d")
    seen = 0
    for at, count in samples:
        count = min(count, len(committed))
        for k in range(seen, count):
            lags.append(at - committed[k])
        seen = max(seen, count)
    return lags


# -- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    payout_db, reporting_db = f"bench_payout_{tag}", f"bench_reporting_{tag}"
    prefix = f"bench-{tag}."
    admin = await asyncpg.connect(database="postgres", **PG)
    for database in (payout_db, reporting_db):
        await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    ports = {name: free_port() for name in ("api", "sandbox", "reporting")}
    payout_env = {
        # A run on one machine: development secrets unless the caller says otherwise (as `make`).
        "PAYOUT_ENVIRONMENT": "development",
        "PAYOUT_BANKS_ENVIRONMENT": "development",
        **os.environ,
        "PAYOUT_DATABASE_URL": url_for(payout_db),
        "PAYOUT_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "PAYOUT_TOPIC_PREFIX": prefix,
        "PAYOUT_BANK_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}",
        **tokens.env("payout"),
        "PAYOUT_SCHEDULER_ENABLED": "false",
        "PAYOUT_LOG_LEVEL": "WARNING",
        "PAYOUT_BATCH_SIZE": str(args.batch_size),
        "PAYOUT_SUBMIT_CONCURRENCY": str(args.submit_concurrency),
        "PAYOUT_RELAY_BATCH_SIZE": "2000",
        "PAYOUT_STATUS_INQUIRY_AFTER_SECONDS": "120",
    }
    reporting_env = {
        "REPORTING_ENVIRONMENT": "development",
        **os.environ,
        "REPORTING_DATABASE_URL": url_for(reporting_db),
        "REPORTING_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "REPORTING_TOPIC_PREFIX": prefix,
        "REPORTING_PORT": str(ports["reporting"]),
        **tokens.env("reporting"),
        "REPORTING_LOG_LEVEL": "WARNING",
    }
    py = sys.executable
    procs = Processes()
    profilers: list[subprocess.Popen] = []
    sampling = asyncio.Event()
    sampler: asyncio.Task | None = None
    result: dict[str, Any] = {}
    try:
        subprocess.run(
            [py, "-m", "services.payout", "migrate"], cwd=ROOT, env=payout_env, check=True
        )
        subprocess.run(
            [py, "-m", "services.reporting", "migrate"], cwd=ROOT, env=reporting_env, check=True
        )
        sampler = asyncio.ensure_future(procs.sample_until(sampling))
        procs.start(
            "sandbox",
            [
                py,
                "-m",
                "services.sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["sandbox"]),
                "--callback-base",
                f"http://127.0.0.1:{ports['api']}",
                "--log-level",
                "warning",
            ],
            payout_env,
        )
        await wait_http(f"http://127.0.0.1:{ports['sandbox']}/health")
        sandbox = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['sandbox']}", timeout=600)
        conn = await asyncpg.connect(database=payout_db, **PG)
        t0 = time.perf_counter()
        await load(conn, sandbox, args.installments, tag[:4])
        load_s = time.perf_counter() - t0

        procs.start(
            "payout_api",
            [
                py,
                "-m",
                "uvicorn",
                "services.payout.bootstrap:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["api"]),
                "--workers",
                str(args.api_workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            payout_env,
        )
        procs.start("reporting_api", [py, "-m", "services.reporting", "api"], reporting_env)
        procs.start("reporting_worker", [py, "-m", "services.reporting", "worker"], reporting_env)
        # Entitlements and verified accounts are loaded straight into the tables, so no intake
        # consumer and no verification run: the relay in a process of its own, the payment work
        # in the others.
        relay_env = {**payout_env, "PAYOUT_WORKER_ROLES": '["relay"]'}
        procs.start("payout_relay", [py, "-m", "services.payout", "worker"], relay_env)
        work_env = {**payout_env, "PAYOUT_WORKER_ROLES": '["submission", "sweeper"]'}
        for n in range(args.worker_processes):
            procs.start(f"payout_worker_{n}", [py, "-m", "services.payout", "worker"], work_env)
        await wait_http(f"http://127.0.0.1:{ports['api']}/healthz")
        await wait_http(f"http://127.0.0.1:{ports['reporting']}/healthz")
        await asyncio.sleep(3.0)  # workers connected (Kafka metadata, database pools)
        token = tokens.token(
            {"payout:operate", "payout:read", "reports:read", "cycles:prepare", "envelopes:write"},
            sub="bench",
        )
        headers = {"Authorization": f"Bearer {token}"}
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports['api']}", timeout=None, headers=headers
        )
        reporting = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports['reporting']}", timeout=60, headers=headers
        )
        if args.profile:
            for name in procs.running:
                profilers.append(
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).with_name("py-spy")),
                            "record",
                            "-p",
                            str(procs.pid(name)),
                            "-o",
                            f"{args.profile}/{name}.txt",
                            "--format",
                            "raw",
                            "-r",
                            "50",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        args.payout_database = payout_db
        cpu_before = cpu_snapshot(procs)
        result = await measure(args, conn, api, reporting, sandbox)
        result["cpu"] = cpu_report(
            cpu_before, cpu_snapshot(procs), result["seconds"], result["installments"]
        )
        result["phases_seconds"]["load_entitlements_and_accounts"] = round(load_s, 2)
        await conn.close()
        await api.aclose()
        await reporting.aclose()
        await sandbox.aclose()
    finally:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        for profiler in profilers:
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.kill()
        sampling.set()
        if sampler is not None:
            await sampler
        procs.stop_all()
        admin = await asyncpg.connect(database="postgres", **PG)
        try:
            for database in (payout_db, reporting_db):
                await drop_scratch_database(admin, database)
        finally:
            await admin.close()
        await delete_topics(prefix)
    result["peak_rss_mb"] = {name: round(mb, 1) for name, mb in sorted(procs.peak_mb.items())}
    return result


async def delete_topics(prefix: str) -> None:
    kafka = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await kafka.start()
    try:
        ours = [t for t in await kafka.list_topics() if t.startswith(prefix)]
        if ours:
            await kafka.delete_topics(ours)
    finally:
        await kafka.close()


async def kpis(reporting: httpx.AsyncClient) -> dict[str, Any]:
    response = await reporting.get("/v1/kpis", params={"period": PERIOD})
    response.raise_for_status()
    figures: dict[str, Any] = response.json()["figures"]
    return figures


async def release_cycle(
    api: httpx.AsyncClient, conn: asyncpg.Connection, period: str
) -> dict[str, float]:
    """What the province does after preparing a period: intake's identity revalidation answered
    (nobody held: the bench loads no population registry, so its answer is written as payout
    keeps it), the funds envelopes loaded for what awaits, and each agency's part approved by a
    checker of that agency (a second officer: the bench client prepared it). Returns how long
    each step took."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    await conn.execute(
        "INSERT INTO revalidation_parts (period, part, last, checked, holds, completed_at,"
        " received_at) VALUES ($1, 1, TRUE, 0, 0, now(), now()) ON CONFLICT DO NOTHING",
        period,
    )
    view = await api.get(f"/v1/cycles/{period}")
    view.raise_for_status()
    timings["read_totals_and_digest"] = round(time.perf_counter() - t0, 2)
    parts = view.json()["agencies"]
    rows = [
        {"period": period, "agency": agency, "scheme": scheme, "amount": MAX_VND_TOTAL}
        for agency, part in parts.items()
        if part["awaiting_approval"]
        for scheme in part["awaiting_approval"]["by_scheme"]
    ]
    if rows:
        (await api.put("/v1/envelopes", json={"envelopes": rows})).raise_for_status()
    t1 = time.perf_counter()
    for agency, part in parts.items():
        if not part["awaiting_approval"]:
            continue
        checker = tokens.token(
            sub=f"bench-checker-{agency.lower()}", kind="person", roles={"checker"}, agency=agency
        )
        approved = await api.post(
            f"/v1/cycles/{period}/approvals",
            json={"agency": agency, "digest": part["awaiting_approval"]["digest"]},
            headers={"Authorization": f"Bearer {checker}"},
        )
        approved.raise_for_status()
    timings["approve"] = round(time.perf_counter() - t1, 2)
    return timings


async def prepare_and_release(
    api: httpx.AsyncClient, database: str, period: str, marks: dict[str, float], t0: float
) -> httpx.Response:
    """POST /v1/cycles (prepared: nothing sent), then its approval; the prepare call's answer."""
    prepared = await api.post("/v1/cycles", json={"period": period})
    prepared.raise_for_status()
    marks["prepared"] = time.perf_counter() - t0
    conn = await asyncpg.connect(database=database, **PG)
    try:
        for step, seconds in (await release_cycle(api, conn, period)).items():
            marks[f"{step}_seconds"] = seconds
    finally:
        await conn.close()
    marks["approved"] = time.perf_counter() - t0
    return prepared


async def measure(
    args: argparse.Namespace,
    conn: asyncpg.Connection,
    api: httpx.AsyncClient,
    reporting: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
) -> dict[str, Any]:
    n = args.installments
    load_before = os.getloadavg()
    released_at = time.time()
    t_start = time.perf_counter()
    marks: dict[str, float] = {}
    # The prepare call returns once the cycle is made; its approval follows; only then is
    # anything sent (the marks say how long each took).
    release = asyncio.ensure_future(
        prepare_and_release(api, args.payout_database, PERIOD, marks, t_start)
    )
    polls: list[tuple[float, int]] = []  # (epoch seconds, reporting's paid count)
    progress = []
    last_change, last_seen = time.perf_counter(), (-1, -1)
    state_every = max(1.0, n / 200_000)  # counting states by group is not free at 1,000,000
    next_states = 0.0
    counts: dict[str, int] = {}
    complete = False
    paid = 0
    while True:
        with contextlib.suppress(httpx.HTTPError):  # a slow answer: the next poll counts
            paid = int((await kpis(reporting)).get("paid_count") or 0)
        now = time.perf_counter() - t_start
        polls.append((time.time(), paid))
        if release.done() and "release_call_returned" not in marks:
            release.result().raise_for_status()
            marks["release_call_returned"] = now
        if now >= next_states:
            next_states = now + state_every
            counts = dict(
                await conn.fetch(
                    "SELECT state, count(*) FROM installments WHERE period = $1 GROUP BY state",
                    PERIOD,
                )
            )
            settled = counts.get("SETTLED", 0) + counts.get("PAID_CASH", 0)
            progress.append((round(now, 1), counts, paid))
            if release.done() and counts.get("SCHEDULED", 0) == 0:
                marks.setdefault("all_submitted", now)
            if settled:
                marks.setdefault("first_settled", now)
            if settled >= n:
                marks.setdefault("all_settled_seen", now)
        if paid:
            marks.setdefault("first_counted_in_reporting", now)
        if paid >= n and release.done():
            marks["all_counted_in_reporting"] = now
            complete = True
            break
        seen = (paid, tuple(sorted(counts.items())))
        if seen != last_seen:
            last_seen, last_change = seen, time.perf_counter()
        elif time.perf_counter() - last_change > args.stall_seconds:
            break  # nothing moved: say so rather than wait for ever
        await asyncio.sleep(0.2)
    total_s = time.perf_counter() - t_start
    load_after = os.getloadavg()
    if not release.done():
        release.cancel()

    committed = array(
        "d",
        [
            row[0]
            for row in await conn.fetch(
                "SELECT extract(epoch FROM created_at)::float8 FROM outbox"
                " WHERE event_type = ANY($1::text[]) ORDER BY created_at",
                SETTLED_EVENTS,
            )
        ],
    )
    last_settlement = committed[-1] - released_at if committed else None
    lags = reporting_lag(committed, polls)
    ledger = (await api.get("/v1/ledger", params={"period": PERIOD})).json()
    bank = (await sandbox.get("/admin/ledger")).json()
    figures = await kpis(reporting)
    events = dict(await conn.fetch("SELECT event_type, count(*) FROM outbox GROUP BY event_type"))
    final = dict(
        await conn.fetch(
            "SELECT state, count(*) FROM installments WHERE period = $1 GROUP BY state", PERIOD
        )
    )
    batches = await conn.fetchval("SELECT count(*) FROM batches")
    expected = expected_sum(n)
    paid_sum = int(figures.get("paid_amount") or 0)
    return {
        "benchmark": "payout cycle, released -> counted in reporting",
        "complete": complete,
        "installments": n,
        "seconds": round(total_s, 2),
        "installments_per_second": round(n / total_s, 1) if complete else None,
        "settled_per_second": round(n / last_settlement, 1)
        if complete and last_settlement
        else None,
        "states": final,
        "batches": batches,
        "phases_seconds": {
            "cycle_prepared_call": round(marks.get("prepared", -1), 2),
            "revalidation_envelopes_and_approval": round(
                marks.get("approved", -1) - marks.get("prepared", 0), 2
            ),
            "read_totals_and_digest": marks.get("read_totals_and_digest_seconds"),
            "approve_call": marks.get("approve_seconds"),
            "prepared_and_approved": round(marks.get("release_call_returned", -1), 2),
            "first_settled": round(marks.get("first_settled", -1), 2),
            "all_submitted": round(marks.get("all_submitted", -1), 2),
            "last_settlement_committed": round(last_settlement, 2) if last_settlement else None,
            "first_counted_in_reporting": round(marks.get("first_counted_in_reporting", -1), 2),
            "all_counted_in_reporting": round(marks.get("all_counted_in_reporting", -1), 2),
        },
        "reporting_lag_seconds": {
            "measured_over": len(lags),
            "p50": round(percentile(lags, 0.50) or 0, 3),
            "p99": round(percentile(lags, 0.99) or 0, 3),
            "max": round(max(lags), 3) if lags else None,
            "poll_interval": 0.2,
        },
        "events_written": {key.split(".")[3]: value for key, value in events.items()},
        "money": {
            "expected_sum": expected,
            "ledger_settled_sum": ledger["settled_sum"],
            "sandbox_total_credited": bank["total_credited"],
            "reporting_paid_sum": paid_sum,
            "reporting_paid_count": int(figures.get("paid_count") or 0),
            "sandbox_credits": bank["credits"],
            "sandbox_duplicates": bank["duplicates"],
            "to_the_dong": ledger["settled_sum"] == bank["total_credited"] == paid_sum == expected,
        },
        "settings": {
            "batch_size": args.batch_size,
            "worker_processes": args.worker_processes,
            "api_workers": args.api_workers,
            "submit_concurrency": args.submit_concurrency,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # The machine is shared: its load says how much of it the run had.
            "load_average_1m_at_start": round(load_before[0], 2),
            "load_average_1m_at_end": round(load_after[0], 2),
        },
        "progress_samples": progress[:: max(1, len(progress) // 40)],
        "measured_at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--installments", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument(
        "--worker-processes", type=int, default=1, help="payout processes submitting batches"
    )
    parser.add_argument(
        "--api-workers", type=int, default=1, help="uvicorn processes taking the callbacks"
    )
    parser.add_argument("--submit-concurrency", type=int, default=4)
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=600,
        help="end the run (incomplete) when nothing has moved for this long",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record every process with py-spy for the whole run: raw stacks in this folder",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "payout.json")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args))
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "progress_samples"},
            indent=2,
            ensure_ascii=False,
        )
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
