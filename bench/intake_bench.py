"""Benchmark: claim filings on the real stack (PostgreSQL + Kafka), open loop and closed loop.

Starts intake (uvicorn with `--workers` processes) and its outbox relay on a fresh PostgreSQL
database, then a load generator in a separate process posts unique valid claims:

- **open loop** (`--rate`, default 300 filings/s for `--open-duration` s): arrivals on a fixed
  schedule, whatever the answers do. A filing whose turn comes while every connection is busy
  opens another connection. Its latency counts from its *scheduled* send time, so a stall of the
  service (or of the generator) shows in the percentiles instead of being hidden by fewer sends
  (coordinated omission).
- **closed loop** (`--connections` keep-alive connections, each sending its next filing when the
  last one is answered, for `--duration` s): the maximum rate, read against the bare FastAPI and
  pgbench ceilings (`bench/baselines.py`).

CPU per filing is the /proc stat delta over each measured window of every process of the stack:
the API's processes, the relay, the PostgreSQL backends of the benchmark's database with the
server's WAL writer, background writer and checkpointer, and the Kafka broker (shared with any
other work on it). Writes `bench/results/intake.json`. It is a measurement, not a test: it never
fails on the figures.

    .venv/bin/python bench/intake_bench.py                      # open loop, then closed loop
    .venv/bin/python bench/intake_bench.py --mode open --rate 300 --open-duration 60

Needs `scripts/infra.sh up` (PostgreSQL on 127.0.0.1:5432, Kafka on 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import tokens
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
OPEN_LOOP_MAX_CONNECTIONS = 1000  # beyond this a filing waits for a connection (and it counts)
ANSWER_TIMEOUT_S = 30.0  # an open-loop filing not answered by then is an error
KEEP_ALIVE_S = 4.0  # an idle connection older than this is closed, not reused


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


@dataclass
class Load:
    """What one generator process sends and where: the same for both loops."""

    index: int
    host: str
    port: int
    token: str
    run: str
    start_at: float  # time.monotonic() of the first send
    measure_from: float
    stop_at: float
    counter: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    answered_in_window: int = 0  # 201 answers received between measure_from and stop_at
    connections_opened: int = 0
    max_send_lag: float = 0.0  # how late the generator itself sent (open loop)

    def request(self) -> bytes:
        self.counter += 1
        body = claim_body(self.index, self.counter, self.run)
        return (
            f"POST /v1/claims HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.connections_opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def record(self, status: int, latency: float, measured: bool) -> None:
        now = time.monotonic()
        if status == 201 and self.measure_from <= now < self.stop_at:
            self.answered_in_window += 1
        if measured:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(latency)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request on a keep-alive connection and read its whole answer: the status."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the service closed the connection")
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
    return int(status_line.split()[1])


async def closed_loop_connection(load: Load) -> None:
    reader, writer = await load.connect()
    while time.monotonic() < load.start_at:
        await asyncio.sleep(0.01)
    try:
        while (now := time.monotonic()) < load.stop_at:
            sent = time.perf_counter()
            status = await exchange(reader, writer, load.request())
            load.record(status, time.perf_counter() - sent, now >= load.measure_from)
    finally:
        writer.close()


async def closed_loop(load: Load, connections: int) -> None:
    results = await asyncio.gather(
        *(closed_loop_connection(load) for _ in range(connections)), return_exceptions=True
    )
    load.failures += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]


async def open_loop(load: Load, rate: float) -> None:
    """Filing i is due at start_at + i / rate; each is sent on an idle connection (or a new one)
    and timed from when it was due."""
    # (reader, writer, idle since): kept under uvicorn's 5 s keep-alive, as HTTP clients do
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    open_connections = 0
    freed = asyncio.Condition()
    in_flight: set[asyncio.Task[None]] = set()

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal open_connections
        async with freed:
            while not idle and open_connections >= OPEN_LOOP_MAX_CONNECTIONS:
                await freed.wait()
            while idle:
                reader, writer, since = idle.pop()
                if time.monotonic() - since < KEEP_ALIVE_S:
                    return reader, writer
                writer.close()
                open_connections -= 1
            open_connections += 1
        try:
            return await load.connect()
        except BaseException:
            open_connections -= 1
            raise

    async def file_one(due: float) -> None:
        nonlocal open_connections
        measured = load.measure_from <= due < load.stop_at
        try:
            conn = await connection()
        except OSError as exc:
            load.failures.append(f"{type(exc).__name__}: {exc}")
            return
        try:
            status = await asyncio.wait_for(
                exchange(*conn, load.request()), ANSWER_TIMEOUT_S - (time.monotonic() - due)
            )
        except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            conn[1].close()
            async with freed:
                open_connections -= 1
                freed.notify()
            if measured:
                load.failures.append(f"{type(exc).__name__}: {exc}")
            return
        load.record(status, time.monotonic() - due, measured)
        async with freed:
            idle.append((*conn, time.monotonic()))
            freed.notify()

    interval = 1.0 / rate
    i = 0
    while (due := load.start_at + i * interval) < load.stop_at:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            load.max_send_lag = max(load.max_send_lag, -delay)
        task = asyncio.ensure_future(file_one(due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        i += 1
    if in_flight:
        await asyncio.wait(in_flight)
    for _, writer, _ in idle:
        writer.close()


def generator_process(load: Load, mode: str, connections: int, rate: float, out: mp.Queue) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if mode == "open":
        asyncio.run(open_loop(load, rate))
    else:
        asyncio.run(closed_loop(load, connections))
    out.put(
        {
            "latencies": load.latencies,
            "statuses": load.statuses,
            "failures": load.failures,
            "answered_in_window": load.answered_in_window,
            "connections_opened": load.connections_opened,
            "max_send_lag": load.max_send_lag,
        }
    )


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


async def _filings_per_transaction(database: str, dossier_prefix: str) -> float | None:
    """How many filings shared each transaction (their rows' xmin), on average."""
    import asyncpg

    conn = await asyncpg.connect(database=database, **PG)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS filings, count(DISTINCT xmin::text) AS transactions FROM claims "
            "WHERE portal_dossier_id LIKE $1",
            dossier_prefix + "%",
        )
    finally:
        await conn.close()
    return round(row["filings"] / row["transactions"], 2) if row["transactions"] else None


async def _pending_events(database: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database=database, **PG)
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


# --- CPU from /proc ------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")
PG_BACKGROUND = ("walwriter", "background writer", "checkpointer")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str
    cmdline: str
    cpu_s: float  # user + system


def _processes() -> list[Proc]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
            fields = tail.split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        out.append(Proc(int(entry.name), int(fields[1]), head.split("(", 1)[1], cmdline, cpu))
    return out


def _descendants(roots: set[int], table: list[Proc]) -> set[int]:
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for p in table:
            if p.ppid in found and p.pid not in found:
                found.add(p.pid)
                changed = True
    return found


class CpuMeter:
    """CPU seconds of each part of the stack, by pid, so that a window's delta counts only the
    processes alive at both ends (a connection opened meanwhile counts from its start)."""

    def __init__(self, database: str, api_pid: int, relay_pid: int | None) -> None:
        self.database = database
        self.api_pid = api_pid
        self.relay_pid = relay_pid
        self.generator_pids: set[int] = set()

    def part_of(self, p: Proc, api: set[int]) -> str | None:
        if p.pid in api:
            return "api"
        if p.pid == self.relay_pid:
            return "relay"
        if p.pid in self.generator_pids:
            return "load_generator"
        if p.name.startswith("postgres"):
            # "postgres: 15/main: <user> <database> <host>(<port>) <state>" for a backend
            if f" {self.database} " in p.cmdline or any(b in p.cmdline for b in PG_BACKGROUND):
                return "postgresql"
            return None
        if p.name == "java" and "kafka" in p.cmdline.lower():
            return "kafka"
        return None

    def sample(self) -> dict[int, tuple[str, float]]:
        table = _processes()
        api = _descendants({self.api_pid}, table)
        sampled = {}
        for p in table:
            part = self.part_of(p, api)
            if part is not None:
                sampled[p.pid] = (part, p.cpu_s)
        return sampled

    @staticmethod
    def delta(
        before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> dict[str, float]:
        parts = dict.fromkeys(("api", "relay", "postgresql", "kafka", "load_generator"), 0.0)
        for pid, (part, cpu) in after.items():
            parts[part] += cpu - (before[pid][1] if pid in before else 0.0)
        return parts


def machine_cpu_s() -> float:
    fields = Path("/proc/stat").read_text().split("\n")[0].split()[1:]
    return (
        sum(float(x) for x in fields[:3] + fields[5:8]) / TICK
    )  # user nice system irq softirq steal


def cpu_report(
    parts: dict[str, float], machine_s: float, filings: int, seconds: float
) -> dict[str, Any]:
    stack = ("api", "relay", "postgresql", "kafka")
    per = max(filings, 1)
    return {
        "total": round(sum(parts[p] for p in stack) * 1000 / per, 3),
        "by_process": {p: round(parts[p] * 1000 / per, 3) for p in stack},
        "load_generator": round(parts["load_generator"] * 1000 / per, 3),
        "whole_machine": round(machine_s * 1000 / per, 3),
        "cores_busy": {
            **{p: round(parts[p] / seconds, 2) for p in (*stack, "load_generator")},
            "whole_machine": round(machine_s / seconds, 2),
        },
    }


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_ms(latencies: list[float]) -> dict[str, float | None]:
    latencies = sorted(latencies)
    return {
        "p50": round(percentile(latencies, 0.50) * 1000, 2),
        "p90": round(percentile(latencies, 0.90) * 1000, 2),
        "p99": round(percentile(latencies, 0.99) * 1000, 2),
        "max": round(latencies[-1] * 1000, 2) if latencies else None,
        "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
    }


# --- one measured phase ----------------------------------------------------------------------


def run_phase(
    mode: str,
    args: argparse.Namespace,
    token: str,
    meter: CpuMeter,
    database: str,
    relay: bool,
) -> dict[str, Any]:
    duration = args.open_duration if mode == "open" else args.duration
    generators = 1 if mode == "open" else args.generators
    load_before = os.getloadavg()
    run = uuid.uuid4().hex[:6]
    start_at = time.monotonic() + 1.0
    measure_from = start_at + args.warmup
    stop_at = measure_from + duration
    context = mp.get_context("spawn")
    queue: mp.Queue = context.Queue()
    per_generator = max(1, args.connections // generators)
    processes = [
        context.Process(
            target=generator_process,
            args=(
                Load(
                    g,
                    "127.0.0.1",
                    args.port,
                    token,
                    f"{mode}{run}",
                    start_at,
                    measure_from,
                    stop_at,
                ),
                mode,
                per_generator,
                args.rate / generators,
                queue,
            ),
        )
        for g in range(generators)
    ]
    for p in processes:
        p.start()
    meter.generator_pids = {p.pid for p in processes if p.pid is not None}
    time.sleep(max(0.0, measure_from - time.monotonic()))
    cpu_start, machine_start = meter.sample(), machine_cpu_s()
    time.sleep(max(0.0, stop_at - time.monotonic()))
    cpu_end, machine_end = meter.sample(), machine_cpu_s()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []
    answered = opened = 0
    send_lag = 0.0
    for _ in processes:
        got = queue.get()
        latencies += got["latencies"]
        failures += got["failures"]
        answered += got["answered_in_window"]
        opened += got["connections_opened"]
        send_lag = max(send_lag, got["max_send_lag"])
        for k, v in got["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    for p in processes:
        p.join()
    load_after = os.getloadavg()
    pending_at_end = asyncio.run(_pending_events(database))
    drained_after = None
    drain_started = time.monotonic()
    while relay and time.monotonic() - drain_started < 120:
        if asyncio.run(_pending_events(database)) == 0:
            drained_after = round(time.monotonic() - drain_started, 2)
            break
        time.sleep(0.5)
    ok = statuses.get(201, 0)
    errors = sum(v for k, v in statuses.items() if k != 201) + len(failures)
    result: dict[str, Any] = {
        "duration_s": duration,
        "warmup_s": args.warmup,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "filings": ok,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "first_failure": failures[0] if failures else None,
        "latency_ms": latency_ms(latencies),
        "connections_opened": opened,
        "filings_per_transaction": asyncio.run(
            _filings_per_transaction(database, f"B-{mode}{run}-")
        ),
        "cpu_ms_per_filing": cpu_report(
            CpuMeter.delta(cpu_start, cpu_end), machine_end - machine_start, answered, duration
        ),
        "outbox_pending_at_end": pending_at_end,
        "outbox_drained_after_s": drained_after,
    }
    if mode == "open":
        result = {
            "rate_per_s": args.rate,
            "achieved_per_s": round(answered / duration, 1),
            "generator_max_send_lag_ms": round(send_lag * 1000, 2),
            **result,
        }
    else:
        result = {
            "filings_per_s": round(answered / duration, 1),
            "connections": args.connections,
            "generators": generators,
            **result,
        }
    return result


def ceilings() -> dict[str, Any]:
    """The bare FastAPI and pgbench ceilings of the last `bench/baselines.py` run, if any."""
    try:
        baselines = json.loads((ROOT / "bench" / "results" / "baselines.json").read_text())
    except (OSError, ValueError):
        return {}
    return {
        "bare_fastapi_requests_per_s": baselines.get("bare_fastapi", {}).get("requests_per_s"),
        "pgbench_filing_insert_transactions_per_s": baselines.get("pgbench_filing_insert", {}).get(
            "transactions_per_s"
        ),
        "source": "bench/results/baselines.json",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["both", "open", "closed"], default="both")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rate", type=float, default=300.0, help="open loop: filings per second")
    parser.add_argument("--open-duration", type=float, default=60.0, help="open loop: measured s")
    parser.add_argument(
        "--connections", type=int, default=64, help="closed loop: keep-alive connections"
    )
    parser.add_argument(
        "--generators", type=int, default=1, help="closed loop: generator processes"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="closed loop: measured s")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--pg-ssl", default="disable", help="asyncpg ssl mode to the database")
    parser.add_argument(
        "--no-relay", action="store_true", help="do not run the outbox relay during the load"
    )
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of idle CPU sampled before the load"
    )
    parser.add_argument(
        "--hold", type=float, default=0.0, help="after start-up, wait this long (to attach py-spy)"
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "intake.json"))
    args = parser.parse_args()

    from services.intake.bootstrap import MIGRATIONS
    from shared.migrations import upgrade_to_head_async

    database = f"bench_intake_{uuid.uuid4().hex[:8]}"
    # A local socket: no TLS between the service and its database (asyncpg would negotiate it).
    url = (
        f"postgresql+asyncpg://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{database}"
        f"?ssl={args.pg_ssl}"
    )
    env = {
        **os.environ,
        "INTAKE_DATABASE_URL": url,
        "INTAKE_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "INTAKE_ENVIRONMENT": "benchmark",
        **tokens.env("intake"),
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
        relay_pid = None
        if not args.no_relay:
            # The outbox relay alone: the verification consumer has nothing to do in this run.
            relay = subprocess.Popen([sys.executable, "-c", RELAY], cwd=ROOT, env=env)
            processes.append(relay)
            relay_pid = relay.pid
        _wait_ready(args.port)
        if args.hold:
            print(
                f"api pid {api.pid}, relay pid {relay_pid}; holding {args.hold:.0f} s", flush=True
            )
            time.sleep(args.hold)
        token = tokens.token({"claims:write", "claims:read"}, sub="bench-portal")
        meter = CpuMeter(database, api.pid, relay_pid)
        relay_on = not args.no_relay
        idle_start, idle_machine = meter.sample(), machine_cpu_s()
        time.sleep(args.idle)
        idle = CpuMeter.delta(idle_start, meter.sample())
        idle_cores = {
            **{
                part: round(cpu / args.idle, 3)
                for part, cpu in idle.items()
                if part != "load_generator"
            },
            "whole_machine": round((machine_cpu_s() - idle_machine) / args.idle, 3),
        }
        open_result = (
            run_phase("open", args, token, meter, database, relay_on)
            if args.mode in ("both", "open")
            else None
        )
        closed_result = (
            run_phase("closed", args, token, meter, database, relay_on)
            if args.mode in ("both", "closed")
            else None
        )
        result: dict[str, Any] = {
            "benchmark": "intake claim filings (POST /v1/claims), unique valid claims",
            "stack": "PostgreSQL + Kafka, outbox relay " + ("off" if args.no_relay else "running"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "workers": args.workers,
            "aim": {
                "open_loop_rate_per_s": 300,
                "open_loop_p99_ms": 100,
                "cpu_ms_per_filing": 2.98,
            },
            "ceilings": ceilings(),
            # What each part burns with no filings at all (the Kafka broker serves other work too).
            "idle_cores_busy": idle_cores,
        }
        if closed_result is not None:
            # The closed loop's figures stay at the top level, where earlier runs kept them.
            result.update(
                filings_per_s=closed_result["filings_per_s"],
                latency_ms=closed_result["latency_ms"],
                closed_loop=closed_result,
            )
        if open_result is not None:
            result["open_loop"] = open_result
            result["cpu_ms_per_filing"] = open_result["cpu_ms_per_filing"]
        elif closed_result is not None:
            result["cpu_ms_per_filing"] = closed_result["cpu_ms_per_filing"]
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
        if open_result is not None:
            lat, cpu = open_result["latency_ms"], open_result["cpu_ms_per_filing"]
            print(
                f"open loop {args.rate:.0f}/s: achieved {open_result['achieved_per_s']}/s  "
                f"p50 {lat['p50']} ms  p99 {lat['p99']} ms  max {lat['max']} ms  "
                f"errors {open_result['errors']}  load {open_result['load_average_after']}"
            )
            print(f"  CPU ms per filing: total {cpu['total']}  {cpu['by_process']}")
            print(f"  filings per transaction: {open_result['filings_per_transaction']}")
        if closed_result is not None:
            lat, cpu = closed_result["latency_ms"], closed_result["cpu_ms_per_filing"]
            print(
                f"closed loop ({args.connections} connections): {closed_result['filings_per_s']}/s  "
                f"p50 {lat['p50']} ms  p99 {lat['p99']} ms  errors {closed_result['errors']}  "
                f"load {closed_result['load_average_after']}"
            )
            print(f"  CPU ms per filing: total {cpu['total']}  {cpu['by_process']}")
        print(f"idle cores busy: {idle_cores}")
        print(f"ceilings: {result['ceilings']}")
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
