"""Benchmark: sustained claim filings per second on the real stack (PostgreSQL + Kafka).

Starts intake (uvicorn with `--workers` processes, plus its worker process: the outbox relay and
the verification consumer) on a fresh PostgreSQL database, then a load generator in a separate
process posts unique valid claims over keep-alive connections for `--duration` seconds (after
`--warmup`). Prints filings/s, p50/p99 latency and the error count, and writes
`bench/results/intake.json`. It is a measurement, not a test: it never fails on the figures.

    .venv/bin/python bench/intake_bench.py --workers 2 --connections 64 --duration 30

Needs `scripts/infra.sh up` (PostgreSQL on 127.0.0.1:5432, Kafka on 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.infra import drop_scratch_database

PG = {
    "host": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("BENCH_PG_PORT", "5432")),
    "user": os.environ.get("BENCH_PG_USER", "benefits"),
    "password": os.environ.get("BENCH_PG_PASSWORD", "benefits"),
}
KAFKA = os.environ.get("BENCH_KAFKA", "127.0.0.1:9092")
RELAY = """
import asyncio, signal
from services.intake.adapters.orm import metadata
from services.intake.settings import IntakeSettings
from shared.runtime import Runtime, run_relay

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runtime = await Runtime.open(IntakeSettings(), metadata)
    try:
        await run_relay(runtime, stop)
    finally:
        await runtime.close()

asyncio.run(main())
"""
PROVINCES = ["001", "026", "025", "027", "031", "079", "048", "040", "038", "036", "019", "024"]


# --- the load generator (its own process) -----------------------------------------------------


def claim_body(generator: int, n: int, run: str) -> bytes:
    """A unique, valid claim: the CCCD's serial, year and province vary with n and the generator."""
    year = 1960 + (n // 1_000_000) % 44
    province = PROVINCES[generator % len(PROVINCES)]
    century = 0 if year < 2000 else 2
    national_id = f"{province}{century + (n % 2)}{year % 100:02d}{n % 1_000_000:06d}"
    body = {
        "portal_dossier_id": f"B-{run}-{generator}-{n}",
        "scheme": "UNEMPLOYMENT",
        "applicant": {
            "national_id": national_id,
            "full_name": "Nguyễn Văn Bình",
            "date_of_birth": f"{year}-03-15",
            "si_number": f"26{n % 10**8:08d}",
        },
        "address": {"commune_code": "08707", "list_date": "2023-05-07"},
        "payment": {
            "method": "OWN_ACCOUNT",
            "bank_bin": "970436",
            "account_number": f"{10**11 + n:012d}",
        },
    }
    return json.dumps(body, ensure_ascii=False).encode()


async def _connection(
    host: str,
    port: int,
    token: str,
    generator: int,
    counter: list[int],
    run: str,
    start_at: float,
    measure_from: float,
    stop_at: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /v1/claims HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
    ).encode()
    while time.monotonic() < start_at:
        await asyncio.sleep(0.01)
    try:
        while True:
            now = time.monotonic()
            if now >= stop_at:
                return
            counter[0] += 1
            body = claim_body(generator, counter[0], run)
            request = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            sent = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:
                statuses[-1] = statuses.get(-1, 0) + 1
                return
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            elapsed = time.perf_counter() - sent
            if now >= measure_from:
                status = int(status_line.split()[1])
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(elapsed)
    finally:
        writer.close()


def generator_process(
    index: int,
    host: str,
    port: int,
    token: str,
    connections: int,
    run: str,
    start_at: float,
    measure_from: float,
    stop_at: float,
    out: mp.Queue,
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = [0]

    failures: list[str] = []

    async def main() -> None:
        results = await asyncio.gather(
            *[
                _connection(
                    host,
                    port,
                    token,
                    index,
                    counter,
                    run,
                    start_at,
                    measure_from,
                    stop_at,
                    latencies,
                    statuses,
                )
                for _ in range(connections)
            ],
            return_exceptions=True,
        )
        failures.extend(f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException))

    asyncio.run(main())
    out.put((latencies, statuses, failures))


# --- the stack -----------------------------------------------------------------------------------


async def _drop(database: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        await drop_scratch_database(conn, database)
    finally:
        await conn.close()


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pending_events(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database=url.rsplit("/", 1)[1].split("?")[0], **PG)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


def _wait_ready(port: int, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("intake did not become ready")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                head, tail = (entry / "stat").read_text().rsplit(")", 1)
                out.append((int(entry.name), int(tail.split()[1]), head.split("(", 1)[1]))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _descendants(root: int, table: list[tuple[int, int, str]]) -> set[int]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid, _ in table:
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def cpu_by_component(
    api_pid: int, relay_pid: int | None, generator_pids: list[int]
) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack (PostgreSQL and Kafka: every process of
    theirs on the machine, so other work on them counts too)."""
    table = _processes()
    parts = {
        "api": sum(_cpu_seconds(p) for p in _descendants(api_pid, table)),
        "relay": _cpu_seconds(relay_pid) if relay_pid else 0.0,
        "load_generator": sum(_cpu_seconds(p) for p in generator_pids),
        "postgresql": sum(_cpu_seconds(p) for p, _, name in table if name.startswith("postgres")),
        "kafka": sum(_cpu_seconds(p) for p, _, name in table if name == "java"),
    }
    parts["whole_machine"] = sum(
        float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:4]
    ) / os.sysconf("SC_CLK_TCK")
    return parts


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--connections", type=int, default=64, help="concurrent keep-alive connections"
    )
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--pg-ssl", default="disable", help="asyncpg ssl mode to the database")
    parser.add_argument(
        "--no-relay", action="store_true", help="do not run the outbox relay during the load"
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "intake.json"))
    args = parser.parse_args()

    from services.intake.bootstrap import MIGRATIONS
    from shared.auth import issue_token
    from shared.migrations import upgrade_to_head_async

    database = f"bench_intake_{uuid.uuid4().hex[:8]}"
    # A local socket: no TLS between the service and its database (asyncpg would negotiate it).
    url = (
        f"postgresql+asyncpg://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{database}"
        f"?ssl={args.pg_ssl}"
    )
    jwt_secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "INTAKE_DATABASE_URL": url,
        "INTAKE_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "INTAKE_ENVIRONMENT": "benchmark",
        "INTAKE_JWT_SECRET": jwt_secret,
        "INTAKE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    processes: list[subprocess.Popen] = []
    try:
        asyncio.run(upgrade_to_head_async(MIGRATIONS, url))
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.intake.bootstrap:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.port),
                "--workers",
                str(args.workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        processes.append(api)
        if not args.no_relay:
            # The outbox relay alone: the verification consumer has nothing to do in this run.
            processes.append(subprocess.Popen([sys.executable, "-c", RELAY], cwd=ROOT, env=env))
        _wait_ready(args.port)
        token = issue_token(
            jwt_secret, "bench-portal", {"claims:write", "claims:read"}, ttl_seconds=3600
        )

        load_before = os.getloadavg()
        run = uuid.uuid4().hex[:6]
        start_at = time.monotonic() + 1.0
        measure_from = start_at + args.warmup
        stop_at = measure_from + args.duration
        queue: mp.Queue = mp.get_context("spawn").Queue()
        per_generator = max(1, args.connections // args.generators)
        generators = [
            mp.get_context("spawn").Process(
                target=generator_process,
                args=(
                    g,
                    "127.0.0.1",
                    args.port,
                    token,
                    per_generator,
                    run,
                    start_at,
                    measure_from,
                    stop_at,
                    queue,
                ),
            )
            for g in range(args.generators)
        ]
        for g in generators:
            g.start()
        relay_pid = processes[1].pid if len(processes) > 1 else None
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_start = cpu_by_component(api.pid, relay_pid, [g.pid for g in generators])
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu_end = cpu_by_component(api.pid, relay_pid, [g.pid for g in generators])
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        connection_failures: list[str] = []
        for _ in generators:
            lat, st, failed = queue.get()
            connection_failures += failed
            latencies += lat
            for k, v in st.items():
                statuses[k] = statuses.get(k, 0) + v
        for g in generators:
            g.join()
        load_after = os.getloadavg()
        pending_at_end = asyncio.run(_pending_events(url))
        drain_started = time.monotonic()
        drained_after = None
        if not args.no_relay:
            while time.monotonic() - drain_started < 120:
                if asyncio.run(_pending_events(url)) == 0:
                    drained_after = round(time.monotonic() - drain_started, 2)
                    break
                time.sleep(0.5)

        latencies.sort()
        ok = statuses.get(201, 0)
        cpu_ms_per_filing = {
            part: round((cpu_end[part] - cpu_start[part]) * 1000 / max(ok, 1), 2)
            for part in cpu_start
        }
        errors = sum(v for k, v in statuses.items() if k != 201) + len(connection_failures)
        result = {
            "benchmark": "intake claim filings (POST /v1/claims), unique valid claims",
            "stack": "PostgreSQL + Kafka, outbox relay " + ("off" if args.no_relay else "running"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after],
            },
            "workers": args.workers,
            "connections": args.connections,
            "generators": args.generators,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "filings": ok,
            "errors": errors,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "filings_per_s": round(ok / args.duration, 1),
            "latency_ms": {
                "p50": round(percentile(latencies, 0.50) * 1000, 2),
                "p90": round(percentile(latencies, 0.90) * 1000, 2),
                "p99": round(percentile(latencies, 0.99) * 1000, 2),
                "max": round(latencies[-1] * 1000, 2) if latencies else None,
                "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
            },
            "connection_failures": len(connection_failures),
            "first_failure": connection_failures[0] if connection_failures else None,
            "cpu_ms_per_filing": cpu_ms_per_filing,
            "cpu_cores_busy": {
                part: round((cpu_end[part] - cpu_start[part]) / args.duration, 2)
                for part in cpu_start
            },
            "outbox_pending_at_end": pending_at_end,
            "outbox_drained_after_s": drained_after,
            "aim": {"filings_per_s": 1500, "p99_ms": 100},
        }
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"filings/s: {result['filings_per_s']}  p50: {result['latency_ms']['p50']} ms  "
            f"p99: {result['latency_ms']['p99']} ms  errors: {errors}  "
            f"(workers={args.workers}, connections={args.connections}, {args.duration:.0f}s)"
        )
        print(f"outbox pending at end: {pending_at_end}, drained after: {drained_after} s")
        print("CPU ms per filing: " + ", ".join(f"{k} {v}" for k, v in cpu_ms_per_filing.items()))
        print(f"written: {args.output}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(_drop(database))


if __name__ == "__main__":
    main()
