"""`make bench`: every benchmark in one run on this machine, one table, JSON in
bench/results/summary.json, compared with the previous run (bench/results/previous-summary.json).

Each benchmark runs as its own process; meanwhile the peak resident memory of every service
process (`services.intake`, `services.payout`, `services.reporting`) is sampled from /proc."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SERVICES = ("intake", "payout", "reporting")


class MemorySampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = (
                        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    )
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for name in SERVICES:
                    if f"services.{name}" in cmdline or f"services/{name}" in cmdline:
                        for line in status.splitlines():
                            if line.startswith("VmRSS:"):
                                self.peak_mb[name] = max(
                                    self.peak_mb[name], int(line.split()[1]) / 1024
                                )


def run(label: str, args: list[str]) -> float:
    print(f"== {label}: {' '.join(args)}", flush=True)
    began = time.monotonic()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    return round(time.monotonic() - began, 1)


def load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--installments",
        type=int,
        nargs="+",
        default=[100_000],
        help="payout cycle sizes (add 1000000 for the national-scale run)",
    )
    parser.add_argument(
        "--beneficiaries", type=int, default=1_000_000, help="reporting read-model scale"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["baselines", "intake", "payout", "reporting"]
    )
    args = parser.parse_args()
    sampler = MemorySampler()
    sampler.start()
    durations: dict[str, float] = {}
    payout_runs: list[dict[str, Any]] = []
    if "baselines" not in args.skip:
        durations["baselines"] = run("baselines", ["-m", "bench.baselines"])
    if "intake" not in args.skip:
        durations["intake"] = run("intake filings", ["bench/intake_bench.py"])
    if "payout" not in args.skip:
        for size in args.installments:
            output = RESULTS / f"payout-{size}.json"
            durations[f"payout {size}"] = run(
                f"payout cycle of {size}",
                ["bench/payout_bench.py", "--installments", str(size), "--output", str(output)],
            )
            payout_runs.append(json.loads(output.read_text()))
    if "reporting" not in args.skip:
        durations["reporting"] = run(
            "reporting queries",
            ["bench/reporting_bench.py", "--beneficiaries", str(args.beneficiaries)],
        )
    sampler.stopped.set()

    baselines, intake, reporting = load("baselines"), load("intake"), load("reporting")
    rows: list[tuple[str, str, str, str]] = []
    if baselines:
        rows += [
            (
                "bare FastAPI endpoint (wrk)",
                f"{baselines['bare_fastapi']['requests_per_s']:,} req/s",
                f"p50 {baselines['bare_fastapi']['p50_ms']} ms / p99 {baselines['bare_fastapi']['p99_ms']} ms",
                "ceiling",
            ),
            (
                "pgbench, filing-shaped insert",
                f"{baselines['pgbench_filing_insert']['transactions_per_s']:,} tx/s",
                f"p50 {baselines['pgbench_filing_insert']['p50_ms']} ms / p99 {baselines['pgbench_filing_insert']['p99_ms']} ms",
                "ceiling",
            ),
            (
                "Kafka producer perf tool",
                f"{baselines['kafka_perf_tools']['producer_records_per_s']:,} rec/s",
                "",
                "ceiling",
            ),
            (
                "Kafka consumer perf tool",
                f"{baselines['kafka_perf_tools']['consumer_records_per_s']:,} rec/s",
                "",
                "ceiling",
            ),
        ]
    if intake:
        latency = intake["latency_ms"]
        met = intake["filings_per_s"] >= 1500 and latency["p99"] < 100
        rows.append(
            (
                "intake claim filings",
                f"{intake['filings_per_s']:,} filings/s",
                f"p50 {latency['p50']} ms / p99 {latency['p99']} ms",
                "met" if met else "missed (aim 1,500/s, p99 < 100 ms)",
            )
        )
    for result in payout_runs:
        rate = result["installments_per_second"]
        rows.append(
            (
                f"payout cycle, {result['installments']:,} installments",
                f"{rate:,} payments/s",
                f"to the đồng: {result['money']['to_the_dong']}",
                "met" if rate >= 5000 else "missed (aim 5,000/s)",
            )
        )
    if reporting:
        rows.append(
            (
                "dashboard queries at 1M beneficiaries x 12 months",
                "",
                f"worst p95 {reporting['worst_dashboard_p95_ms']} ms",
                "met" if reporting["aim_met"] else "missed (aim 50 ms)",
            )
        )
    for name, peak in sampler.peak_mb.items():
        if peak:
            rows.append(
                (
                    f"peak memory of one {name} process",
                    f"{peak:.0f} MB",
                    "",
                    "met" if peak < 300 else "missed (aim 300 MB)",
                )
            )

    summary = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
        "durations_s": durations,
        "load_average": os.getloadavg(),
    }
    previous_path = RESULTS / "summary.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else None
    if previous:
        (RESULTS / "previous-summary.json").write_text(
            json.dumps(previous, indent=2, ensure_ascii=False)
        )
    previous_rows = {row[0]: row for row in previous["rows"]} if previous else {}
    previous_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False))

    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'measure':<{width}}  {'rate':>20}  {'latency / check':<34}  {'aim':<30}  previous")
    for name, rate, latency, aim in rows:
        before = previous_rows.get(name)
        print(
            f"{name:<{width}}  {rate:>20}  {latency:<34}  {aim:<30}  {(before[1] or before[2]) if before else '-'}"
        )


if __name__ == "__main__":
    main()
