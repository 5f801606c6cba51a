"""The machine's own limits, measured on the same machine as the services: a bare FastAPI
endpoint under wrk, PostgreSQL under pgbench with an insert shaped like a claim filing, and
Kafka's own producer and consumer performance tools on the same broker."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
KAFKA_LIBS = ROOT / ".run" / "kafka" / "libs"
PG = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "benefits", "PGPASSWORD": "benefits"}

WRK_POST = """
counter = 0
request = function()
  counter = counter + 1
  local id = string.format("BARE-%d-%d", math.random(1, 1000000000), counter)
  local body = string.format('{"portal_dossier_id":"%s","national_id":"026090001234",' ..
    '"full_name":"Nguyễn Văn An","date_of_birth":"1990-05-01","scheme":"UNEMPLOYMENT","commune_code":"08707"}', id)
  return wrk.format("POST", "/v1/claims", {["Content-Type"] = "application/json"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
    return shutil.which("wrk") or "wrk"


def parse_wrk(output: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    latencies = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": round(rate, 1),
        "p50_ms": round(ms(latencies["50"]), 2),
        "p99_ms": round(ms(latencies["99"]), 2),
        "errors": int(errors.group(1)) if errors else 0,
    }


def wrk_post(url: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_POST)
    out = subprocess.run(
        [
            ensure_wrk(),
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(out)


def bare_fastapi(seconds: int, workers: int, connections: int) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:create_app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        return wrk_post(f"http://127.0.0.1:{port}", seconds, connections)
    finally:
        server.terminate()
        server.wait()


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


PGBENCH_SCHEMA = """
DROP TABLE IF EXISTS bench_claims;
CREATE TABLE bench_claims (
  id uuid PRIMARY KEY, portal_dossier_id text UNIQUE NOT NULL, national_id text NOT NULL,
  full_name text NOT NULL, date_of_birth date NOT NULL, scheme text NOT NULL, commune_code text NOT NULL,
  request_hash text NOT NULL, response jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
DROP TABLE IF EXISTS bench_outbox;
CREATE TABLE bench_outbox (id bigserial PRIMARY KEY, topic text, key text, payload bytea, created_at timestamptz DEFAULT now());
"""
# One filing: the claim row and its event, in one transaction, as intake writes them.
PGBENCH_SCRIPT = """
\\set n random(1, 1000000000)
BEGIN;
INSERT INTO bench_claims (id, portal_dossier_id, national_id, full_name, date_of_birth, scheme, commune_code, request_hash, response)
  VALUES (gen_random_uuid(), 'PG-' || :client_id || '-' || :n || '-' || txid_current(), '026090001234', 'Nguyễn Văn An',
          '1990-05-01', 'UNEMPLOYMENT', '08707', md5(:n::text), '{"status": "RECEIVED"}');
INSERT INTO bench_outbox (topic, key, payload) VALUES ('intake.claim.v1', :n::text, convert_to(repeat('x', 600), 'UTF8'));
COMMIT;
"""


def pgbench(seconds: int, clients: int) -> dict[str, float]:
    env = {**os.environ, **PG}
    database = "bench_baseline"
    subprocess.run(["dropdb", "--if-exists", database], env=env, check=True)
    subprocess.run(["createdb", database], env=env, check=True)
    subprocess.run(
        ["psql", "-q", "-d", database, "-c", PGBENCH_SCHEMA],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "filing.sql"
        script.write_text(PGBENCH_SCRIPT)
        out = subprocess.run(
            [
                "pgbench",
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                str(script),
                "-l",
                "--log-prefix",
                str(Path(work) / "tx"),
                database,
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        latencies = sorted(
            int(line.split()[2])
            for log in Path(work).glob("tx*")
            for line in log.read_text().splitlines()
        )
    subprocess.run(["dropdb", "--if-exists", database], env=env, check=True)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "transactions_per_s": round(tps, 1),
        "p50_ms": round(latencies[len(latencies) // 2] / 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] / 1000, 2),
        "clients": clients,
    }


def kafka_tools(
    records: int, record_size: int, bootstrap: str = "127.0.0.1:9092"
) -> dict[str, float]:
    classpath = f"{KAFKA_LIBS}/*"
    topic = f"bench.perf.{int(time.time())}"
    produced = subprocess.run(
        [
            "java",
            "-Xmx512m",
            "-cp",
            classpath,
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
            "enable.idempotence=true",
            "linger.ms=5",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    produce_rate = float(re.findall(r"([\d.]+) records/sec", produced)[-1])
    consumed = subprocess.run(
        [
            "java",
            "-Xmx512m",
            "-cp",
            classpath,
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--messages",
            str(records),
            "--timeout",
            "60000",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = consumed.strip().splitlines()[-1].split(",")
    consume_rate = float(fields[5])  # nMsg.sec
    return {
        "producer_records_per_s": round(produce_rate, 1),
        "consumer_records_per_s": round(consume_rate, 1),
        "record_size": record_size,
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--kafka-records", type=int, default=500_000)
    args = parser.parse_args()
    results = {
        "bare_fastapi": bare_fastapi(args.seconds, args.workers, args.connections),
        "pgbench_filing_insert": pgbench(args.seconds, clients=16),
        "kafka_perf_tools": kafka_tools(args.kafka_records, 600),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "baselines.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
