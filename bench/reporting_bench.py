"""Benchmark of the reporting dashboard's queries at province scale and beyond.

Fills the reporting read models directly with bulk SQL, as 1,000,000 beneficiaries paid over 12
months would leave them (installment facts, people per period, the cubes, claims), starts the
reporting API in a separate process, and times the dashboard's requests over HTTP (p50/p95/max over
many sequential requests). It also checks, from PostgreSQL's statistics, that no request read the
payment history (`payment_facts`, `payment_people`). Results go to bench/results/reporting.json.

    .venv/bin/python bench/reporting_bench.py                   # 1,000,000 x 12, about 10 minutes
    .venv/bin/python bench/reporting_bench.py --beneficiaries 100000 --requests 100

Needs PostgreSQL (scripts/infra.sh up). The database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
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

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.reporting import bootstrap
from services.reporting.domain.areas import reporting_area
from shared.admin_units import LIST_2023, units
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
    args = parser.parse_args()

    def log(message: str) -> None:
        print(f"[bench] {message}", flush=True)

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
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        log(
            f"worst dashboard p95 {worst} ms (aim {TARGET_P95_MS} ms); history reads {history}; "
            f"written to {args.output}"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if not args.keep:
            asyncio.run(drop())


if __name__ == "__main__":
    main()
