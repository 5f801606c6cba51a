"""Benchmark of the reporting dashboard's queries at province scale and beyond.

Fills the reporting read models directly with bulk SQL, as 1,000,000 beneficiaries paid over 12
months would leave them (installment facts, people per period, the cubes, claims), starts the
reporting API in a separate process, and times the dashboard's requests over HTTP (p50/p95/max over
many sequential requests). It also checks, from PostgreSQL's statistics, that no request read the
payment history (`payment_facts`, `payment_people`). Results go to bench/results/reporting.json.

    .venv/bin/python bench/reporting_bench.py                   # 1,000,000 x 12, about 10 minutes
    .venv/bin/python bench/reporting_bench.py --beneficiaries 100000 --requests 100
    .venv/bin/python bench/reporting_bench.py --no-dashboard --consumer-installments 60000 \
        --rebuild-installments 0 --profile-dir /tmp/prof    # the consumer alone, profiled

By default it also runs the projection consumer under a payout stream of 5,000 installments/s
(100,000 installments, three events and more each) and `reporting rebuild` of a province's year
(1,200,000 installments of 100,000 people, about 3.6 million events); needs Kafka for those.

Needs PostgreSQL (scripts/infra.sh up). The database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.reporting import bootstrap
from services.reporting.domain.areas import reporting_area
from shared.admin_units import LIST_2023, units
from shared.events.envelope import EVENT_TYPE_HEADER
from shared.messaging.ports import OutgoingRecord
from shared.migrations import upgrade_to_head
from tests.support.infra import drop_scratch_database

PERIODS = [f"2023-{m:02d}" for m in range(1, 13)]
LATEST = PERIODS[-1]
TARGET_SCOPE = "scheme=PENSION&scheme=SI_ALLOWANCE"
# The requests the dashboard makes when it opens (and on each refresh), plus its two tables' other level.
QUERIES = {
    "periods": "/v1/periods",
    "targets_progress": f"/v1/targets/progress?as_of={LATEST}",
    "kpis_period": f"/v1/kpis?period={LATEST}",
    "kpis_year": "/v1/kpis?period_from=2023-01&period_to=2023-12",
    "channels": f"/v1/breakdowns/channel?period={LATEST}",
    "urban_rural_series": f"/v1/timeseries?split=area-type&{TARGET_SCOPE}&period_to={LATEST}",
    "districts_ranked": f"/v1/breakdowns/district?{TARGET_SCOPE}&area_type=URBAN&period={LATEST}&sort=-share",
    "communes_ranked": f"/v1/breakdowns/commune?{TARGET_SCOPE}&area_type=URBAN&period={LATEST}&sort=-share",
    "schemes": f"/v1/breakdowns/scheme?period={LATEST}",
    "freshness": "/v1/freshness",
    "export_districts_xlsx": f"/v1/exports/district.xlsx?{TARGET_SCOPE}&period={LATEST}",
}
TARGET_P95_MS = 50.0

# scheme, agency, base monthly amount, share of beneficiaries in percent
SCHEMES = [
    ("PENSION", "BHXH", 4_850_000, 45),
    ("SI_ALLOWANCE", "BHXH", 2_320_000, 15),
    ("MERITORIOUS", "DOLISA", 2_789_000, 15),
    ("SOCIAL_PROTECTION", "DOLISA", 540_000, 20),
    ("UNEMPLOYMENT", "BHXH", 5_460_000, 5),
]


def scheme_case(column: str, index: int) -> str:
    """SQL CASE over (b % 100) picking the scheme's field `index` by the shares above."""
    parts, upper = [], 0
    for scheme in SCHEMES:
        upper += scheme[3]
        value = scheme[index]
        parts.append(
            f"WHEN {column} % 100 < {upper} THEN {value!r}"
            if isinstance(value, int)
            else f"WHEN {column} % 100 < {upper} THEN '{value}'"
        )
    return "CASE " + " ".join(parts) + " END"


async def fill(dsn: str, beneficiaries: int, log) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("SET work_mem = '256MB'")
        communes = units(LIST_2023)
        await conn.execute(
            "CREATE TEMP TABLE bench_units (n int PRIMARY KEY, code text, urban boolean, "
            "area_commune text, area_list date, area_district text, area_province text, area_type text)"
        )
        rows = []
        for n, unit in enumerate(communes):
            area = reporting_area(unit.code, LIST_2023, LATEST)
            rows.append(
                (
                    n,
                    unit.code,
                    unit.urban,
                    area.code,
                    area.list_date,
                    area.district_code,
                    area.province_code,
                    area.area_type,
                )
            )
        await conn.copy_records_to_table("bench_units", records=rows)
        count = len(communes)

        # One row per beneficiary and month: who, where, which scheme, and from which month they are
        # paid into an account (towns adopt faster than the countryside; some never do).
        started = time.perf_counter()
        await conn.execute(f"""
            CREATE TEMP TABLE bench_people AS
            SELECT b, u.code AS commune, u.urban,
                   {scheme_case("b", 0)} AS scheme, {scheme_case("b", 1)} AS agency,
                   {scheme_case("b", 2)} + (b % 400) * 1000 AS amount,
                   CASE WHEN u.urban THEN (hashint4(b) & 1023) % 16 ELSE (hashint4(b) & 1023) % 36 END AS adopt,
                   (b % 10) < 3 AS authorised
            FROM generate_series(0, {beneficiaries - 1}) AS b
            JOIN bench_units u ON u.n = b % {count}
        """)
        log(f"people: {time.perf_counter() - started:.1f}s")

        started = time.perf_counter()
        await conn.execute("ALTER TABLE payment_facts SET UNLOGGED")
        await conn.execute("ALTER TABLE payment_people SET UNLOGGED")
        await conn.execute("DROP INDEX ix_payment_facts_person")
        await conn.execute("ALTER TABLE payment_facts DROP CONSTRAINT payment_facts_pkey")
        await conn.execute("ALTER TABLE payment_people DROP CONSTRAINT payment_people_pkey")
        await conn.execute(f"""
            INSERT INTO payment_facts (installment_id, beneficiary_id, period, amount, scheme, agency, channel,
                                       commune_code, list_date, state, state_at)
            SELECT 'i' || p.b || '-' || m.period, 'b' || p.b, m.period, p.amount, p.scheme, p.agency,
                   CASE WHEN m.i < p.adopt THEN 'CASH_POST_OFFICE'
                        WHEN p.authorised THEN 'AUTHORISED_ACCOUNT' ELSE 'OWN_ACCOUNT' END,
                   p.commune, DATE '{LIST_2023.isoformat()}',
                   CASE WHEN m.i < p.adopt THEN 'PAID_CASH' ELSE 'SETTLED' END,
                   (m.period || '-10')::date + make_interval(secs => p.b % 86400)
            FROM bench_people p
            CROSS JOIN (SELECT i, to_char(DATE '2023-01-01' + make_interval(months => i), 'YYYY-MM') AS period
                        FROM generate_series(0, 11) AS i) m
        """)
        log(f"payment_facts: {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        await conn.execute("""
            INSERT INTO payment_people (period, beneficiary_id, scheme, commune_code, list_date, agency, channel)
            SELECT period, beneficiary_id, scheme, commune_code, list_date, agency, channel FROM payment_facts
        """)
        log(f"payment_people: {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        await conn.execute("ALTER TABLE payment_facts ADD PRIMARY KEY (installment_id)")
        await conn.execute(
            "CREATE INDEX ix_payment_facts_person ON payment_facts (period, beneficiary_id, scheme)"
        )
        await conn.execute(
            "ALTER TABLE payment_people ADD PRIMARY KEY (period, beneficiary_id, scheme)"
        )
        await conn.execute("ALTER TABLE payment_facts SET LOGGED")
        await conn.execute("ALTER TABLE payment_people SET LOGGED")
        log(f"fact indexes: {time.perf_counter() - started:.1f}s")

        started = time.perf_counter()
        await conn.execute("""
            INSERT INTO payment_cube (period, commune_code, list_date, scheme, agency, channel, area_commune,
                                      area_list, area_district, area_province, area_type, people_paid, paid_count,
                                      paid_amount)
            SELECT f.period, f.commune_code, f.list_date, f.scheme, f.agency, f.channel, u.area_commune, u.area_list,
                   u.area_district, u.area_province, u.area_type, count(*), count(*), sum(f.amount)
            FROM payment_facts f JOIN bench_units u ON u.code = f.commune_code
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
        """)
        await conn.execute("""
            INSERT INTO payment_rollup (period, area_province, area_district, area_type, scheme, agency, channel,
                                        people_paid, paid_count, paid_amount)
            SELECT period, area_province, area_district, area_type, scheme, agency, channel, sum(people_paid),
                   sum(paid_count), sum(paid_amount)
            FROM payment_cube GROUP BY 1, 2, 3, 4, 5, 6, 7
        """)
        log(f"payment_cube and rollup: {time.perf_counter() - started:.1f}s")

        # Unemployment claims: the unemployment beneficiaries filed in the month before their first
        # payment; nine in ten approved, the rest rejected.
        started = time.perf_counter()
        await conn.execute("""
            INSERT INTO claim_facts (claim_id, received_period, received_commune, received_list, received_scheme,
                                     received_agency, received_at, decided_period, decided_commune, decided_list,
                                     decided_scheme, decided_agency, outcome, decided_at)
            SELECT 'c' || p.b, to_char(DATE '2023-01-01' + make_interval(months => (p.b / 100) % 12), 'YYYY-MM'),
                   p.commune, DATE '2023-05-07', 'UNEMPLOYMENT', 'ESC',
                   DATE '2023-01-03' + make_interval(months => (p.b / 100) % 12),
                   to_char(DATE '2023-01-20' + make_interval(months => (p.b / 100) % 12), 'YYYY-MM'),
                   p.commune, DATE '2023-05-07', 'UNEMPLOYMENT', 'ESC',
                   CASE WHEN p.b % 10 = 9 THEN 'REJECTED' ELSE 'APPROVED' END,
                   DATE '2023-01-20' + make_interval(months => (p.b / 100) % 12)
            FROM bench_people p WHERE p.scheme = 'UNEMPLOYMENT'
        """)
        await conn.execute("""
            INSERT INTO claim_cube (period, commune_code, list_date, scheme, agency, area_commune, area_list,
                                    area_district, area_province, area_type, received, approved, rejected)
            SELECT period, commune, list_date, 'UNEMPLOYMENT', 'ESC', u.area_commune, u.area_list, u.area_district,
                   u.area_province, u.area_type, sum(received), sum(approved), sum(rejected)
            FROM (
                SELECT received_period AS period, received_commune AS commune, received_list AS list_date,
                       1 AS received, 0 AS approved, 0 AS rejected FROM claim_facts
                UNION ALL
                SELECT decided_period, decided_commune, decided_list, 0, (outcome = 'APPROVED')::int,
                       (outcome = 'REJECTED')::int FROM claim_facts
            ) c JOIN bench_units u ON u.code = c.commune
            GROUP BY 1, 2, 3, 6, 7, 8, 9, 10
        """)
        await conn.execute("""
            INSERT INTO claim_rollup (period, area_province, area_district, area_type, scheme, agency, received,
                                      approved, rejected)
            SELECT period, area_province, area_district, area_type, scheme, agency, sum(received), sum(approved),
                   sum(rejected)
            FROM claim_cube GROUP BY 1, 2, 3, 4, 5, 6
        """)
        log(f"claims: {time.perf_counter() - started:.1f}s")
        await conn.execute(
            "UPDATE projection_state SET events_applied = (SELECT count(*) * 3 FROM payment_facts), "
            "last_event_at = now(), last_applied_at = now()"
        )
        await conn.execute("ANALYZE")
        counts = {}
        for table in (
            "payment_facts",
            "payment_people",
            "claim_facts",
            "payment_cube",
            "claim_cube",
            "payment_rollup",
            "claim_rollup",
        ):
            counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        counts["payment_cube_rows_per_period"] = counts["payment_cube"] // len(PERIODS)
        return counts
    finally:
        await conn.close()


async def history_reads(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans "
            "FROM pg_stat_user_tables WHERE relname IN ('payment_facts', 'payment_people')"
        )
        return {r["relname"]: int(r["scans"]) for r in rows}
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_queries(base: str, requests: int, warmup: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, path in QUERIES.items():
            for _ in range(warmup):
                client.get(path).raise_for_status()
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            samples.sort()
            results[name] = {
                "p50_ms": round(statistics.median(samples), 2),
                "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2),
                "max_ms": round(samples[-1], 2),
                "bytes": len(response.content),
            }
            print(
                f"  {name:<24} p50 {results[name]['p50_ms']:7.2f} ms   p95 {results[name]['p95_ms']:7.2f} ms",
                flush=True,
            )
    return results


# -- the projection consumer and the rebuild ---------------------------------------------------
#
# Payout's events as payout writes them (contract dicts through the outbox's bulk rows, then the
# relay's record) into this run's own prefixed Kafka topics; the real reporting worker, API and
# rebuild processes read them into a scratch database.

KAFKA = os.environ.get("BENCH_KAFKA", "127.0.0.1:9092")
LAG_AIM_S = 2.0
RSS_AIM_MB = 300.0
BANKS = ("970436", "970415", "970418")
BLOCK = 500  # installments a payout step moves at once (a bank batch)


def _scheme_of(b: int) -> tuple[str, str, int, int]:
    upper = 0
    for scheme in SCHEMES:
        upper += scheme[3]
        if b % 100 < upper:
            return scheme
    return SCHEMES[-1]


class PayoutStream:
    """Installment `n` belongs to beneficiary `n % people` in period `n // people`: scheduled,
    then submitted (one in fifty fails once on the way), then settled to an account, or paid in
    cash at the post office for one in ten."""

    def __init__(self, people: int) -> None:
        from sqlalchemy import MetaData

        from shared.outbox import Outbox, outbox_tables

        self.people = people
        self.outbox = Outbox(outbox_tables(MetaData())[0], "payout", notify=False)
        self.communes = [u.code for u in units(LIST_2023)]

    def facts(self, n: int) -> dict[str, Any]:
        b = n % self.people
        scheme, agency, base, _ = _scheme_of(b)
        cash = b % 10 == 0
        return {
            "installment_id": f"i{b}-{n // self.people}",
            "entitlement_id": f"e{b}-{scheme}",
            "beneficiary_id": f"b{b}",
            "period": PERIODS[(n // self.people) % len(PERIODS)],
            "amount": base + (b % 400) * 1000,
            "scheme": scheme,
            "agency": agency,
            "channel": "CASH_POST_OFFICE"
            if cash
            else ("AUTHORISED_ACCOUNT" if b % 7 == 0 else "OWN_ACCOUNT"),
            "counterparty": "VNPOST" if cash else BANKS[b % len(BANKS)],
            "commune_code": self.communes[b % len(self.communes)],
            "commune_list_date": LIST_2023.isoformat(),
        }

    def stage(self, step: int, ns: range) -> list[Any]:
        """The records of one step (0 scheduled, 1 submitted, 2 final) for installments `ns`."""
        from shared.events.contracts import (
            InstallmentScheduled,
            PaymentFailed,
            PaymentPaidInCash,
            PaymentSettled,
            PaymentSubmitted,
        )
        from shared.outbox import json_time

        at = json_time(datetime.now(UTC))
        items: dict[type, list[dict[str, Any]]] = {}
        for n in ns:
            f = self.facts(n)
            e2e = f"E{n:012d}"
            if step == 0:
                items.setdefault(InstallmentScheduled, []).append({**f, "scheduled_at": at})
            elif step == 1:
                submitted = {
                    **f,
                    "batch_id": f"batch-{n // BLOCK}",
                    "end_to_end_id": e2e,
                    "submitted_at": at,
                }
                items.setdefault(PaymentSubmitted, []).append(submitted)
                if n % 50 == 1 and f["channel"] != "CASH_POST_OFFICE":
                    items.setdefault(PaymentFailed, []).append(
                        {
                            **f,
                            "reason_code": "TIMEOUT",
                            "reason_text": "no answer from the bank",
                            "permanent": False,
                            "failed_at": at,
                        }
                    )
                    items[PaymentSubmitted].append({**submitted, "batch_id": f"retry-{n // BLOCK}"})
            elif f["channel"] == "CASH_POST_OFFICE":
                items.setdefault(PaymentPaidInCash, []).append(
                    {**f, "paid_on": at[:10], "staff_id": "vnpost-17", "paid_at": at}
                )
            else:
                items.setdefault(PaymentSettled, []).append(
                    {**f, "end_to_end_id": e2e, "bank_reference": f"FT{n:010d}", "settled_at": at}
                )
        return [
            OutgoingRecord(row[3], row[4].encode(), row[5], ((EVENT_TYPE_HEADER, row[2].encode()),))
            for model, chunk in items.items()
            for row in self.outbox.bulk_rows(model, chunk)
        ]


def consumer_env(url: str, prefix: str, port: int, batch: int | None) -> dict[str, str]:
    env = {
        **os.environ,
        "REPORTING_ENVIRONMENT": "development",
        "REPORTING_DATABASE_URL": url,
        "REPORTING_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "REPORTING_TOPIC_PREFIX": prefix,
        "REPORTING_PORT": str(port),
        "REPORTING_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    if batch:
        env["REPORTING_CONSUMER_BATCH_SIZE"] = str(batch)
    return env


def peak_rss_mb(pid: int) -> float | None:
    """The process's high-water mark of resident memory (VmHWM), while it runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Watched:
    """A reporting process and its peak RSS, sampled while it runs."""

    def __init__(self, argv: list[str], env: dict[str, str], profile: Path | None = None) -> None:
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE)
        self.peak_mb = 0.0
        self.profiler = None
        if profile is not None:
            self.profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "-o",
                    str(profile),
                    "--pid",
                    str(self.process.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def sample(self) -> None:
        rss = peak_rss_mb(self.process.pid)
        if rss is not None:
            self.peak_mb = max(self.peak_mb, rss)

    def stop(self) -> None:
        self.sample()
        if self.profiler is not None:
            self.profiler.send_signal(2)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.profiler.wait(timeout=30)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_http(base: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the reporting API did not start: {process.poll()}")
            await asyncio.sleep(0.1)


async def events_applied(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT sum(events_applied) FROM projection_state") or 0)
    finally:
        await conn.close()


async def delete_topics(prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def _bus(prefix: str) -> Any:
    from services.reporting.settings import ReportingSettings
    from shared.bus import make_bus

    return make_bus(
        ReportingSettings(
            environment="development", kafka_bootstrap_servers=KAFKA, topic_prefix=prefix
        )
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


async def measure_consumer(
    dsn: str, url: str, installments: int, rate: float, batch: int | None, profile: Path | None, log
) -> dict[str, Any]:
    """Payout at `rate` installments/s (three steps per installment, half a second apart) while
    the reporting worker projects; lag = the time /v1/kpis counts a paid installment minus its
    event's commit time (the outbox stamp), per installment."""
    from services.reporting.consumers.projections import TOPICS

    prefix = f"bench-rep-{uuid.uuid4().hex[:8]}."
    bus = _bus(prefix)
    await bus.ensure_topics(TOPICS)
    stream = PayoutStream(installments)
    port = free_port()
    env = consumer_env(url, prefix, port, batch)
    py = sys.executable
    worker = Watched([py, "-m", "services.reporting", "worker"], env, profile)
    api = subprocess.Popen(
        [py, "-m", "services.reporting", "api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    producer = bus.producer()
    await producer.start()
    marks: list[tuple[float, int]] = []  # (commit time, installments paid so far)
    seen: list[tuple[float, int]] = []  # (time, paid_count shown by /v1/kpis)
    done = asyncio.Event()
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(base, api)

        async def watch() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                while not done.is_set():
                    response = await client.get(f"/v1/kpis?period={PERIODS[0]}")
                    seen.append((time.time(), int(response.json()["figures"]["paid_count"])))
                    worker.sample()
                    if seen[-1][1] >= installments:
                        done.set()
                    await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        tick = BLOCK / rate
        blocks = -(-installments // BLOCK)
        started = time.time()
        produced = paid = 0
        late_ticks = 0
        for k in range(blocks + 2):
            due = started + k * tick
            pause = due - time.time()
            if pause > 0:
                await asyncio.sleep(pause)
            elif pause < -tick:
                late_ticks += 1
            records = []
            for step in range(3):
                first = (k - step) * BLOCK
                if 0 <= first < installments:
                    ns = range(first, min(first + BLOCK, installments))
                    records.extend(stream.stage(step, ns))
                    if step == 2:
                        paid += len(ns)
            commit = time.time()
            await producer.publish(records)
            produced += len(records)
            if paid:
                marks.append((commit, paid))
        produce_seconds = time.time() - started
        log(f"produced {produced:,} events in {produce_seconds:.1f}s; waiting for reporting")
        await asyncio.wait_for(done.wait(), timeout=600)
        caught_up = time.time()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        applied = await events_applied(dsn)
    finally:
        await producer.stop()
        worker.stop()
        api.terminate()
        api.wait(timeout=20)
        await delete_topics(prefix)
    lags: list[float] = []
    previous = 0
    cursor = 0
    for commit, count in marks:
        while cursor < len(seen) and seen[cursor][1] < count:
            cursor += 1
        visible = seen[cursor][0] if cursor < len(seen) else caught_up
        lags.extend([max(0.0, visible - commit)] * (count - previous))
        previous = count
    p99 = _percentile(lags, 0.99)
    return {
        "installments": installments,
        "events": produced,
        "events_applied": applied,
        "offered_installments_per_s": rate,
        "produced_events_per_s": round(produced / produce_seconds),
        "projected_events_per_s": round(produced / (caught_up - started)),
        "events_per_s": round(produced / (caught_up - started)),
        "lag_p99_s": round(p99, 3),
        "producer_late_ticks": late_ticks,
        "lag_s": {
            "p50": round(_percentile(lags, 0.5), 3),
            "p99": round(p99, 3),
            "max": round(max(lags, default=0.0), 3),
        },
        "kpis_poll_interval_s": 0.1,
        "peak_rss_mb": round(worker.peak_mb, 1),
        "lag_aim_s": LAG_AIM_S,
        "aim_met": p99 < LAG_AIM_S and worker.peak_mb < RSS_AIM_MB and applied == produced,
    }


async def measure_rebuild(
    dsn: str, url: str, installments: int, people: int, profile: Path | None, log
) -> dict[str, Any]:
    """A year of payout events produced once into the run's topics, then `reporting rebuild`
    timed end to end in its own process; its figures checked against what was produced."""
    from services.reporting.consumers.projections import TOPICS

    prefix = f"bench-rebuild-{uuid.uuid4().hex[:8]}."
    bus = _bus(prefix)
    await bus.ensure_topics(TOPICS)
    stream = PayoutStream(people)
    producer = bus.producer()
    await producer.start()
    produced = paid_amount = 0
    started = time.perf_counter()
    try:
        for first in range(0, installments, 5 * BLOCK):
            ns = range(first, min(first + 5 * BLOCK, installments))
            for step in range(3):
                records = stream.stage(step, ns)
                await producer.publish(records)
                produced += len(records)
            paid_amount += sum(stream.facts(n)["amount"] for n in ns)
        await producer.stop()
        log(f"produced {produced:,} events in {time.perf_counter() - started:.1f}s; rebuilding")
        env = consumer_env(url, prefix, free_port(), None)
        rebuild = Watched([sys.executable, "-m", "services.reporting", "rebuild"], env, profile)
        started = time.perf_counter()
        while rebuild.process.poll() is None:
            rebuild.sample()
            await asyncio.sleep(0.25)
        seconds = time.perf_counter() - started
        rebuild.stop()
        if rebuild.process.returncode != 0:
            raise SystemExit(f"rebuild failed: {rebuild.process.stderr.read().decode()[-2000:]}")
        conn = await asyncpg.connect(dsn)
        try:
            counted = await conn.fetchrow(
                "SELECT sum(paid_count) AS paid, sum(paid_amount) AS amount FROM payment_cube"
            )
        finally:
            await conn.close()
        applied = await events_applied(dsn)
    finally:
        await delete_topics(prefix)
    return {
        "installments": installments,
        "people": people,
        "events": produced,
        "events_applied": applied,
        "seconds": round(seconds, 1),
        "events_per_s": round(produced / seconds),
        "peak_rss_mb": round(rebuild.peak_mb, 1),
        "figures_match": int(counted["paid"]) == installments
        and int(counted["amount"]) == paid_amount,
        "rss_aim_mb": RSS_AIM_MB,
        "aim_met": rebuild.peak_mb < RSS_AIM_MB and applied == produced,
    }


async def with_scratch_database(admin: str, run, keep: bool = False) -> Any:
    name = f"bench_reporting_{uuid.uuid4().hex[:8]}"
    dsn = f"{admin.rsplit('/', 1)[0]}/{name}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        await asyncio.to_thread(upgrade_to_head, bootstrap.MIGRATIONS, url)
        return await run(dsn, url)
    finally:
        if not keep:
            conn = await asyncpg.connect(admin)
            try:
                await drop_scratch_database(conn, name)
            finally:
                await conn.close()


def run_dashboard(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    name = f"bench_reporting_{uuid.uuid4().hex[:8]}"
    admin = args.admin_dsn
    base_dsn = admin.rsplit("/", 1)[0]
    dsn = f"{base_dsn}/{name}"
    sqlalchemy_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await drop_scratch_database(conn, name)
        finally:
            await conn.close()

    asyncio.run(create())
    server = None
    try:
        upgrade_to_head(bootstrap.MIGRATIONS, sqlalchemy_url)
        log(f"filling read models for {args.beneficiaries:,} beneficiaries x {len(PERIODS)} months")
        started = time.perf_counter()
        counts = asyncio.run(fill(dsn, args.beneficiaries, log))
        fill_seconds = round(time.perf_counter() - started, 1)
        log(f"filled in {fill_seconds}s: {counts}")

        port = free_port()
        data_dir = tempfile.mkdtemp(prefix="reporting-bench-")
        env = {
            **os.environ,
            "REPORTING_DATABASE_URL": sqlalchemy_url,
            "REPORTING_DATA_DIR": data_dir,
            "REPORTING_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("REPORTING_KAFKA_BOOTSTRAP_SERVERS", None)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.reporting",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the API did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)

        before = asyncio.run(history_reads(dsn))
        log(
            f"timing {len(QUERIES)} queries, {args.requests} requests each (server in its own process)"
        )
        timings = time_queries(base, args.requests, args.warmup)
        after = asyncio.run(history_reads(dsn))
        history = {t: after.get(t, 0) - before.get(t, 0) for t in after}
        worst = max(t["p95_ms"] for name_, t in timings.items() if not name_.startswith("export"))
        result = {
            "benchmark": "reporting dashboard queries",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "scale": {
                "beneficiaries": args.beneficiaries,
                "periods": len(PERIODS),
                "installments": counts["payment_facts"],
            },
            "rows": counts,
            "fill_seconds": fill_seconds,
            "requests_per_query": args.requests,
            "queries": {name_: {"path": QUERIES[name_], **t} for name_, t in timings.items()},
            "worst_dashboard_p95_ms": worst,
            "aim_p95_ms": TARGET_P95_MS,
            "aim_met": worst < TARGET_P95_MS,
            "payment_history_reads_during_run": history,
        }
        log(f"worst dashboard p95 {worst} ms (aim {TARGET_P95_MS} ms); history reads {history}")
        return result
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if not args.keep:
            asyncio.run(drop())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beneficiaries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get(
            "BENCH_PG_ADMIN_DSN", "postgresql://benefits:benefits@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "reporting.json"
    )
    parser.add_argument(
        "--no-dashboard", action="store_true", help="only the consumer and rebuild sections"
    )
    parser.add_argument(
        "--consumer-installments",
        type=int,
        default=100_000,
        help="payout installments produced while the reporting worker projects (0: skip)",
    )
    parser.add_argument(
        "--rate", type=float, default=5000, help="installments/s the payout stream offers"
    )
    parser.add_argument("--consumer-batch", type=int, default=None, help="records per poll")
    parser.add_argument(
        "--rebuild-installments",
        type=int,
        default=1_200_000,
        help="a year's installments replayed by `reporting rebuild` (0: skip); 1200000 for a "
        "province year",
    )
    parser.add_argument("--rebuild-people", type=int, default=100_000)
    parser.add_argument(
        "--profile-dir", type=Path, default=None, help="py-spy raw profiles of the processes"
    )
    args = parser.parse_args()

    def log(message: str) -> None:
        print(f"[bench] {message}", flush=True)

    def profile(name: str) -> Path | None:
        if args.profile_dir is None:
            return None
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        return args.profile_dir / f"{name}.txt"

    result: dict[str, Any] = {} if args.no_dashboard else run_dashboard(args, log)
    result["load_average_before"] = os.getloadavg()
    if args.consumer_installments:
        log(f"consumer: {args.consumer_installments:,} installments offered at {args.rate:,.0f}/s")

        async def consumer(dsn: str, url: str) -> dict[str, Any]:
            return await measure_consumer(
                dsn,
                url,
                args.consumer_installments,
                args.rate,
                args.consumer_batch,
                profile("consumer"),
                log,
            )

        section = asyncio.run(with_scratch_database(args.admin_dsn, consumer, args.keep))
        result["consumer"] = section
        result["consumer_events_per_s"] = section["projected_events_per_s"]
        result["consumer_lag_p99_s"] = section["lag_s"]["p99"]
        result["consumer_peak_rss_mb"] = section["peak_rss_mb"]
        result["consumer_aim_met"] = section["aim_met"]
        log(f"consumer: {section}")
    if args.rebuild_installments:
        log(
            f"rebuild: {args.rebuild_installments:,} installments of {args.rebuild_people:,} people"
        )

        async def rebuild(dsn: str, url: str) -> dict[str, Any]:
            return await measure_rebuild(
                dsn, url, args.rebuild_installments, args.rebuild_people, profile("rebuild"), log
            )

        section = asyncio.run(with_scratch_database(args.admin_dsn, rebuild, args.keep))
        result["rebuild"] = section
        result["rebuild_seconds"] = section["seconds"]
        result["rebuild_events_per_s"] = section["events_per_s"]
        result["rebuild_peak_rss_mb"] = section["peak_rss_mb"]
        result["rebuild_aim_met"] = section["aim_met"]
        log(f"rebuild: {section}")
    result["load_average_after"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    log(f"written to {args.output}")


if __name__ == "__main__":
    main()
