"""The full API fuzzing: schemathesis against intake's, payout's and reporting's OpenAPI, each
service running for real on a fresh PostgreSQL database and Kafka (topics of its own), seeded
with a little data, with valid credentials (all scopes). Every operation gets `--examples` cases
that fit its schema and as many that do not; each answer must not be a server error and must
conform to the declared status codes, content types and schemas. Prints a summary per operation
and every failure, writes `bench/results/fuzz.json`, and exits 1 when anything failed.

    .venv/bin/python bench/fuzz.py                      # 200 examples per operation and mode
    .venv/bin/python bench/fuzz.py --examples 50 --service payout --only webhooks

Needs `scripts/infra.sh up` (PostgreSQL on 127.0.0.1:5432, Kafka on 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.runner import FuzzReport, fuzz
from tests.fuzz.scenarios import running
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database

SERVICES = ("intake", "payout", "reporting")


async def fuzz_service(service: str, examples: int, only: list[str], shrink: bool) -> FuzzReport:
    name, url = await create_database(f"fuzz_{service}")
    try:
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{service}-") as data_dir:
            async with running(service, url, KAFKA_BOOTSTRAP, Path(data_dir)) as target:
                return await asyncio.to_thread(
                    fuzz,
                    service,
                    target.base_url,
                    target.headers,
                    examples=examples,
                    only=only,
                    shrink=shrink,
                    known=target.known,
                )
    finally:
        await drop_database(name)


async def main(options: argparse.Namespace) -> int:
    results = {}
    failed = 0
    for service in options.service or SERVICES:
        started = time.monotonic()
        report = await fuzz_service(service, options.examples, options.only, options.shrink)
        seconds = round(time.monotonic() - started, 1)
        print(report.summary(), flush=True)
        for failure in report.failures:
            print(f"\n--- {service}: {failure}", flush=True)
        failed += len(report.failures)
        results[service] = {
            "operations": len(report.operations),
            "requests": report.examples,
            "seconds": seconds,
            "statuses": {str(k): v for k, v in sorted(report.statuses().items())},
            "failures": report.failures,
        }
    total = sum(r["requests"] for r in results.values())
    per_service = ", ".join(f"{s}: {len(r['failures'])}" for s, r in results.items())
    print(f"\nfuzzing: {total} requests, {failed} failures ({per_service})")
    out = ROOT / "bench" / "results" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"examples_per_operation_and_mode": options.examples, "services": results},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=200, help="cases per operation and generation mode"
    )
    parser.add_argument(
        "--service", action="append", choices=SERVICES, help="only these services (repeatable)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="only operations whose label contains this"
    )
    parser.add_argument(
        "--shrink", action="store_true", help="shrink failing cases to minimal ones (slower)"
    )
    raise SystemExit(asyncio.run(main(parser.parse_args())))
