"""Benchmark: a whole payout cycle, scheduled → settled, on the real stack.

Starts the bank sandbox (a real HTTP server), the payout API (it receives the sandbox's signed
callbacks) and `--worker-processes` payout worker processes (submission, status sweeper, outbox
relay) on a fresh PostgreSQL database and Kafka. Loads `--installments` entitlements whose
accounts are already verified (straight into the tables, and the accounts into the sandbox),
starts the cycle through the API, and measures until every installment is settled (or paid in
cash). Then checks the money: the ledger's settled sum must equal the sandbox's credits to the
đồng, with no duplicate credit. Prints installments/s and the time of each phase, and writes
`bench/results/payout.json`. It is a measurement, not a test: it never fails on the figures.

    .venv/bin/python bench/payout_bench.py --installments 100000

Needs `scripts/infra.sh up` (PostgreSQL on 127.0.0.1:5432, Kafka on 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import httpx

from shared.auth import issue_token
from tests.support.infra import drop_scratch_database

PG = {
    "host": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("BENCH_PG_PORT", "5432")),
    "user": os.environ.get("BENCH_PG_USER", "benefits"),
    "password": os.environ.get("BENCH_PG_PASSWORD", "benefits"),
}
KAFKA = os.environ.get("BENCH_KAFKA", "127.0.0.1:9092")
JWT = "payout-benchmark-jwt-secret-32-bytes-long"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_for(database: str) -> str:
    return (
        f"postgresql+asyncpg://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{database}"
    )


def fold(name: str) -> str:
    from shared.vn_text import fold as _fold

    return _fold(name)


async def wait_http(url: str, timeout: float = 30) -> None:
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


def plan(n: int) -> list[tuple[str, int]]:
    """(counterparty, amount) per installment, in a fixed mix."""
    weights = [w for _, w in SPLIT]
    total = sum(weights)
    out = []
    for i in range(n):
        slot = i % total
        bounds = itertools.accumulate(w for _, w in SPLIT)
        chosen = next(c for (c, _), bound in zip(SPLIT, bounds, strict=True) if slot < bound)
        out.append((chosen, 1_500_000 + 1_000 * (i % 997)))
    return out


async def load(conn: asyncpg.Connection, n: int, tag: str) -> tuple[list[dict], int]:
    now = datetime.now(UTC)
    rows_b, rows_e, rows_m, accounts = [], [], [], []
    total = 0
    for i, (counterparty, amount) in enumerate(plan(n)):
        name = f"{SURNAMES[i % 7]} {GIVEN[(i // 7) % 8]}"
        bid, eid = f"B{tag}{i}", f"E{tag}{i}"
        rows_b.append((bid, name, "09154", date(2023, 5, 7), now, now))
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
                date(2023, 5, 7),
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
        else:
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
        total += amount
    await conn.copy_records_to_table(
        "beneficiaries",
        records=rows_b,
        columns=[
            "beneficiary_id",
            "full_name",
            "commune_code",
            "commune_list_date",
            "registered_at",
            "updated_at",
        ],
    )
    await conn.copy_records_to_table(
        "entitlements",
        records=rows_e,
        columns=[
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
        ],
    )
    await conn.copy_records_to_table(
        "payment_methods",
        records=rows_m,
        columns=[
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
        ],
    )
    await conn.execute("ANALYZE")
    return accounts, total


async def run(args: argparse.Namespace) -> dict:
    admin = await asyncpg.connect(database="postgres", **PG)
    database = f"bench_payout_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    api_port, sandbox_port = free_port(), free_port()
    env = {
        # A run on one machine: development secrets unless the caller says otherwise (as `make`).
        "PAYOUT_ENVIRONMENT": "development",
        "PAYOUT_BANKS_ENVIRONMENT": "development",
        **os.environ,
        "PAYOUT_DATABASE_URL": url_for(database),
        "PAYOUT_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "PAYOUT_BANK_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "PAYOUT_JWT_SECRET": JWT,
        "PAYOUT_SCHEDULER_ENABLED": "false",
        "PAYOUT_LOG_LEVEL": "WARNING",
        "PAYOUT_BATCH_SIZE": str(args.batch_size),
        "PAYOUT_SUBMIT_CONCURRENCY": str(args.submit_concurrency),
        "PAYOUT_RELAY_BATCH_SIZE": "2000",
        "PAYOUT_STATUS_INQUIRY_AFTER_SECONDS": "120",
    }
    processes: list[subprocess.Popen] = []
    py = sys.executable
    result: dict = {}
    result_pids: dict = {}
    try:
        subprocess.run([py, "-m", "services.payout", "migrate"], cwd=ROOT, env=env, check=True)
        conn = await asyncpg.connect(database=database, **PG)
        t0 = time.perf_counter()
        accounts, expected = await load(conn, args.installments, uuid.uuid4().hex[:4])
        load_s = time.perf_counter() - t0
        processes.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "services.sandbox",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(sandbox_port),
                    "--callback-base",
                    f"http://127.0.0.1:{api_port}",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "uvicorn",
                    "services.payout.bootstrap:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(api_port),
                    "--workers",
                    str(args.api_workers),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        await wait_http(f"http://127.0.0.1:{sandbox_port}/health")
        await wait_http(f"http://127.0.0.1:{api_port}/healthz")
        sandbox = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sandbox_port}", timeout=120)
        for start in range(0, len(accounts), 20000):
            (
                await sandbox.post("/admin/accounts", json=accounts[start : start + 20000])
            ).raise_for_status()
        # The outbox relay in a process of its own, the payment work in others. Entitlements and
        # verified accounts are loaded straight into the tables, so no intake consumer runs.
        processes.append(
            subprocess.Popen(
                [py, "-m", "services.payout", "worker"],
                cwd=ROOT,
                env={**env, "PAYOUT_WORKER_ROLES": '["relay"]'},
            )
        )
        for _ in range(args.worker_processes):
            processes.append(
                subprocess.Popen(
                    [py, "-m", "services.payout", "worker"],
                    cwd=ROOT,
                    env={**env, "PAYOUT_WORKER_ROLES": '["submission", "sweeper"]'},
                )
            )
        result_pids["api"] = processes[1].pid
        result_pids["workers"] = [p.pid for p in processes[3:]]
        await asyncio.sleep(2.0)  # workers connected (Kafka metadata, database pools)
        token = issue_token(JWT, "bench", {"payout:operate", "payout:read"})
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}",
            timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        )

        if args.profile:
            for name, pid in (("worker", result_pids["workers"][0]), ("sandbox", processes[0].pid)):
                processes.append(
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).with_name("py-spy")),
                            "record",
                            "-p",
                            str(pid),
                            "-o",
                            f"/tmp/payout-{name}.txt",
                            "--format",
                            "raw",
                            "-d",
                            str(int(args.profile)),
                            "-r",
                            "50",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        load_before = os.getloadavg()
        t_start = time.perf_counter()
        started = await api.post("/v1/cycles", json={"period": PERIOD})
        started.raise_for_status()
        t_scheduled = time.perf_counter()
        marks: dict[str, float] = {}
        samples = []
        while True:
            counts = dict(
                await conn.fetch(
                    "SELECT state, count(*) FROM installments WHERE period = $1 GROUP BY state",
                    PERIOD,
                )
            )
            settled = counts.get("SETTLED", 0) + counts.get("PAID_CASH", 0)
            now = time.perf_counter() - t_start
            samples.append((round(now, 2), counts))
            if counts.get("SCHEDULED", 0) == 0 and "all_submitted" not in marks:
                marks["all_submitted"] = now
            if settled and "first_settled" not in marks:
                marks["first_settled"] = now
            if settled >= args.installments or now > args.timeout:
                break
            await asyncio.sleep(0.2)
        t_settled = time.perf_counter()
        final_counts = counts
        ledger = (await api.get("/v1/ledger", params={"period": PERIOD})).json()
        outbox_pending_at_settled = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        t_relay = time.perf_counter()
        while (
            await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            and time.perf_counter() - t_relay < args.timeout
        ):
            await asyncio.sleep(0.5)
        relay_drain_s = time.perf_counter() - t_relay
        events = await conn.fetchval("SELECT count(*) FROM outbox")
        bank = (await sandbox.get("/admin/ledger")).json()
        total_s = t_settled - t_start
        result = {
            "benchmark": "payout cycle, scheduled -> settled",
            "installments": args.installments,
            "settled": settled,
            "states": final_counts,
            "installments_per_second": round(settled / total_s, 1),
            "phases_seconds": {
                "load_entitlements_and_accounts": round(load_s, 2),
                "start_cycle_api_call": round(t_scheduled - t_start, 2),
                "first_settlement_after_start": round(marks.get("first_settled", 0), 2),
                "all_submitted_after_start": round(marks.get("all_submitted", 0), 2),
                "all_settled_after_start": round(total_s, 2),
                "outbox_relay_drain_after_settled": round(relay_drain_s, 2),
            },
            "outbox_pending_at_settled": outbox_pending_at_settled,
            "events_written": events,
            "money": {
                "expected_sum": expected,
                "ledger_settled_sum": ledger["settled_sum"],
                "sandbox_total_credited": bank["total_credited"],
                "sandbox_credits": bank["credits"],
                "sandbox_duplicates": bank["duplicates"],
                "to_the_dong": ledger["settled_sum"] == bank["total_credited"] == expected,
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
                "load_average_1m_at_settled": round(os.getloadavg()[0], 2),
            },
            "progress_samples": samples[:: max(1, len(samples) // 40)],
            "measured_at": datetime.now(UTC).isoformat(),
        }
        await conn.close()
        await api.aclose()
        await sandbox.aclose()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        admin = await asyncpg.connect(database="postgres", **PG)
        await drop_scratch_database(admin, database)
        await admin.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--installments", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument(
        "--api-workers", type=int, default=1, help="uvicorn processes taking the callbacks"
    )
    parser.add_argument("--submit-concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        help="record the worker and the sandbox with py-spy (pip install py-spy) for N seconds, raw stacks in /tmp",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "payout.json")
    args = parser.parse_args()
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
