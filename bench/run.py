"""`make bench`: every benchmark in one run on this machine, one table with each figure's aim and
its ratio to the ceiling measured in the same run, JSON in bench/results/summary.json, compared
with the previous run (bench/results/previous-summary.json).

Each benchmark runs as its own process and writes its own JSON; this collects them:

- the machine's ceilings (bench/baselines.py: bare FastAPI under wrk, pgbench, Kafka's perf tools);
- intake filings, closed loop (the maximum) and open loop at 300 filings/s (bench/intake_bench.py);
- payout cycles released → counted in reporting, on PostgreSQL + Kafka + the bank sandbox: 100,000
  installments with 1 and with 2 worker processes, and 1,000,000 (bench/payout_bench.py), with the
  peak memory of every process and reporting's lag;
- reporting: dashboard queries at 1,000,000 beneficiaries and `benefits rebuild` of a province's
  year (bench/reporting_bench.py);
- the main job on the embedded default at a province's size (`benefits demo --report`).

A benchmark that fails is reported as failed in the table; the others still run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAYOUT_RUNS = ("100000x1", "100000x2", "1000000x2")  # installments x worker processes
PAYOUT_AIM = 5_000  # installments/s, released → counted in reporting
MEMORY_AIM_MB = 300
MEMORY_SPREAD_AIM = 0.15  # the 1,000,000 peak within 15% of the 100,000 one
LAG_AIM_S = 2.0
MAIN_JOB_AIM_S = 300
INTAKE_OPEN_LOOP_P99_AIM_MS = 100
INTAKE_CPU_BEFORE_MS = 5.96  # CPU per filing, all processes, when the aim was set


@dataclass
class Row:
    measure: str
    result: str
    detail: str = ""
    aim: str = ""
    status: str = ""  # "met", "missed by …", "ceiling", "failed"
    ratio: str = ""  # to the ceiling measured in the same run


def run(label: str, args: list[str]) -> tuple[float, bool]:
    print(f"== {label}: {' '.join(args)}", flush=True)
    began = time.monotonic()
    finished = subprocess.run(args, cwd=ROOT).returncode == 0
    if not finished:
        print(f"!! {label} failed", flush=True)
    return round(time.monotonic() - began, 1), finished


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def missed(value: float, aim: float, *, higher_is_better: bool, unit: str) -> str:
    if (value >= aim) if higher_is_better else (value <= aim):
        return "met"
    return f"missed by {abs(aim - value):,.1f} {unit}".replace(".0 ", " ")


def ceiling_rows(baselines: dict[str, Any]) -> list[Row]:
    if not baselines:
        return []
    fastapi, pgbench = baselines["bare_fastapi"], baselines["pgbench_filing_insert"]
    kafka = baselines["kafka_perf_tools"]
    return [
        Row(
            "bare FastAPI endpoint (wrk)",
            f"{fastapi['requests_per_s']:,} req/s",
            f"p50 {fastapi['p50_ms']} ms / p99 {fastapi['p99_ms']} ms",
            status="ceiling",
        ),
        Row(
            "pgbench, filing-shaped insert",
            f"{pgbench['transactions_per_s']:,} tx/s",
            f"p50 {pgbench['p50_ms']} ms / p99 {pgbench['p99_ms']} ms",
            status="ceiling",
        ),
        Row(
            "Kafka producer perf tool",
            f"{kafka['producer_records_per_s']:,} rec/s",
            status="ceiling",
        ),
        Row(
            "Kafka consumer perf tool",
            f"{kafka['consumer_records_per_s']:,} rec/s",
            status="ceiling",
        ),
    ]


class IntakeMemory(threading.Thread):
    """The peak resident memory of intake's processes while its benchmark runs (the payout
    benchmark samples its own processes)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                if b"services.intake" in cmdline:
                    for line in status.splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)


def intake_rows(intake: dict[str, Any], baselines: dict[str, Any], peak_mb: float) -> list[Row]:
    if not intake:
        return []
    fastapi = baselines.get("bare_fastapi", {}).get("requests_per_s")
    pgbench = baselines.get("pgbench_filing_insert", {}).get("transactions_per_s")
    rows = []
    closed = intake.get("filings_per_s")
    if closed:
        rows.append(
            Row(
                "intake filings, closed loop (maximum)",
                f"{closed:,} filings/s",
                f"p50 {intake['latency_ms']['p50']} ms / p99 {intake['latency_ms']['p99']} ms",
                status="reported",
                ratio=" / ".join(
                    f"{closed / ceiling:.0%} of {name}"
                    for name, ceiling in (("FastAPI", fastapi), ("pgbench", pgbench))
                    if ceiling
                ),
            )
        )
    open_loop = intake.get("open_loop")
    if open_loop:
        p99 = open_loop["latency_ms"]["p99"]
        rows.append(
            Row(
                f"intake filings, open loop at {open_loop['rate_per_s']:,.0f}/s",
                f"{open_loop['achieved_per_s']:,} filings/s, {open_loop['errors']} errors",
                f"p50 {open_loop['latency_ms']['p50']} ms / p99 {p99} ms",
                f"p99 < {INTAKE_OPEN_LOOP_P99_AIM_MS} ms",
                missed(p99, INTAKE_OPEN_LOOP_P99_AIM_MS, higher_is_better=False, unit="ms"),
            )
        )
    if peak_mb:
        rows.append(
            Row(
                "peak memory of one intake process, under the filings load",
                f"{peak_mb:,.0f} MB",
                aim=f"< {MEMORY_AIM_MB} MB",
                status="met" if peak_mb < MEMORY_AIM_MB else "missed",
            )
        )
    cpu = intake.get("cpu_ms_per_filing")
    if cpu:
        aim = INTAKE_CPU_BEFORE_MS / 2
        by_process = ", ".join(f"{name} {ms}" for name, ms in cpu["by_process"].items())
        rows.append(
            Row(
                "intake CPU per filing, all processes",
                f"{cpu['total']} ms",
                by_process,
                f"≤ {aim:.2f} ms (half of {INTAKE_CPU_BEFORE_MS})",
                missed(cpu["total"], aim, higher_is_better=False, unit="ms"),
            )
        )
    return rows


def payout_rows(runs: dict[str, dict[str, Any]], baselines: dict[str, Any]) -> list[Row]:
    producer = baselines.get("kafka_perf_tools", {}).get("producer_records_per_s")
    pgbench = baselines.get("pgbench_filing_insert", {}).get("transactions_per_s")
    rows: list[Row] = []
    for label, result in runs.items():
        if not result:
            continue  # not run (a failed run is its own row)
        size, workers = label.split("x")
        name = f"payout cycle of {int(size):,}, {workers} worker process{'es' if workers != '1' else ''}"
        if not result.get("complete"):
            rows.append(Row(name, "did not complete", status="failed"))
            continue
        rate = result["installments_per_second"]
        events = sum(result.get("events_written", {}).values()) or 3 * result["installments"]
        ratios = []
        if producer:
            ratios.append(
                f"events {rate * events / result['installments'] / producer:.0%} of Kafka"
            )
        if pgbench:
            ratios.append(f"{rate / pgbench:.0%} of pgbench tx/s")
        rows.append(
            Row(
                name + ", released → counted in reporting",
                f"{rate:,} installments/s",
                f"{result['seconds']} s; settled {result.get('settled_per_second')}/s; "
                f"to the đồng: {result['money']['to_the_dong']}, "
                f"duplicates {result['money']['sandbox_duplicates']}",
                f"≥ {PAYOUT_AIM:,}/s",
                missed(rate, PAYOUT_AIM, higher_is_better=True, unit="/s"),
                ", ".join(ratios),
            )
        )
        cpu = result.get("cpu")
        if cpu:
            heaviest = sorted(cpu["ms_per_installment"].items(), key=lambda kv: -kv[1])[:4]
            rows.append(
                Row(
                    f"CPU per installment, cycle of {int(size):,}, every process",
                    f"{cpu['total_ms_per_installment']} ms",
                    ", ".join(f"{name} {ms}" for name, ms in heaviest)
                    + f"; machine {cpu['share_of_machine']:.0%} busy",
                    "",
                    "ceiling",
                    f"CPU-bound at {cpu['installments_per_second_if_cpu_bound']:,}/s on "
                    f"{os.cpu_count()} cores: {rate / cpu['installments_per_second_if_cpu_bound']:.0%}",
                )
            )
        lag = result.get("reporting_lag_seconds")
        if lag and lag.get("measured_over"):
            rows.append(
                Row(
                    f"reporting lag behind payout, cycle of {int(size):,}",
                    f"p99 {lag['p99']} s",
                    f"p50 {lag['p50']} s, max {lag['max']} s over {lag['measured_over']} samples",
                    f"p99 < {LAG_AIM_S} s",
                    missed(lag["p99"], LAG_AIM_S, higher_is_better=False, unit="s"),
                )
            )
    rows += memory_rows(runs)
    return rows


def memory_rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    """Every process's peak in the largest cycle, and how far it is from the 100,000 one."""
    small, large = runs.get("100000x2", {}), runs.get("1000000x2", {})
    rows = []
    for name, peak in sorted(large.get("peak_rss_mb", {}).items()):
        base = small.get("peak_rss_mb", {}).get(name)
        spread = (peak - base) / base if base else None
        met = peak < MEMORY_AIM_MB and (spread is None or spread < MEMORY_SPREAD_AIM)
        rows.append(
            Row(
                f"peak memory of {name}, cycle of 1,000,000",
                f"{peak:,.0f} MB",
                f"cycle of 100,000: {base:,.0f} MB ({spread:+.0%})" if base else "",
                f"< {MEMORY_AIM_MB} MB, < +{MEMORY_SPREAD_AIM:.0%}",
                "met" if met else f"missed ({peak:,.0f} MB, {spread:+.0%})" if base else "missed",
            )
        )
    return rows


def reporting_rows(reporting: dict[str, Any]) -> list[Row]:
    if not reporting:
        return []
    rows = [
        Row(
            "dashboard queries at 1M beneficiaries x 12 months",
            f"worst p95 {reporting['worst_dashboard_p95_ms']} ms",
            aim="p95 < 50 ms",
            status="met" if reporting["aim_met"] else "missed",
        )
    ]
    rebuild = reporting.get("rebuild")
    if rebuild:
        rows.append(
            Row(
                f"benefits rebuild, {rebuild['installments']:,} installments / "
                f"{rebuild['events']:,} events",
                f"{rebuild['seconds']} s",
                f"{rebuild['events_per_s']:,} events/s, peak {rebuild.get('peak_rss_mb', '?')} MB",
                status="reported",
            )
        )
    consumer = reporting.get("consumer")
    if consumer:
        rows.append(
            Row(
                "reporting consumer, payout events projected",
                f"{consumer['events_per_s']:,} events/s",
                f"lag p99 {consumer.get('lag_p99_s')} s",
                f"≥ {3 * PAYOUT_AIM:,} events/s",
                missed(consumer["events_per_s"], 3 * PAYOUT_AIM, higher_is_better=True, unit="/s"),
            )
        )
    return rows


def main_job_rows(report: dict[str, Any]) -> list[Row]:
    if not report:
        return []
    ready = report["ready_seconds"]
    slowest = sorted(report["phases_s"].items(), key=lambda item: -item[1])[:3]
    return [
        Row(
            f"main job, embedded default, {report['beneficiaries']:,} payees x "
            f"{len(report['cycles'])} cycles",
            f"ready in {ready:,} s",
            f"{report['installments']:,} installments; "
            + ", ".join(f"{phase} {spent} s" for phase, spent in slowest),
            f"< {MAIN_JOB_AIM_S} s",
            missed(ready, MAIN_JOB_AIM_S, higher_is_better=False, unit="s"),
        )
    ]


def print_table(rows: list[Row], previous: dict[str, dict[str, Any]]) -> None:
    headers = ("measure", "result", "aim", "status", "ratio to ceiling", "previous run")
    table = [
        (
            r.measure,
            r.result,
            r.aim,
            r.status,
            r.ratio,
            previous.get(r.measure, {}).get("result", "-"),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in table)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for line, row in zip(table, rows, strict=True):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if row.detail:
            print(" " * 4 + row.detail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--payout-runs",
        nargs="*",
        default=list(PAYOUT_RUNS),
        help="payout cycles as <installments>x<worker processes>",
    )
    parser.add_argument(
        "--beneficiaries", type=int, default=1_000_000, help="reporting read-model scale"
    )
    parser.add_argument(
        "--main-job-beneficiaries", type=int, default=100_000, help="the main job's province"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["baselines", "intake", "payout", "reporting", "main-job"],
    )
    parser.add_argument(
        "--table-only", action="store_true", help="run nothing: the table of the last results"
    )
    args = parser.parse_args()
    if args.table_only:
        args.skip = ["baselines", "intake", "payout", "reporting", "main-job"]
    python = sys.executable
    sampler = IntakeMemory()
    sampler.start()
    durations: dict[str, float] = {}
    failed: list[str] = []

    def step(name: str, label: str, command: list[str]) -> None:
        durations[name], finished = run(label, command)
        if not finished:
            failed.append(name)

    if "baselines" not in args.skip:
        step("baselines", "the machine's ceilings", [python, "-m", "bench.baselines"])
    if "intake" not in args.skip:
        step("intake", "intake filings", [python, "bench/intake_bench.py"])
    sampler.stopped.set()
    payout: dict[str, dict[str, Any]] = {
        label: load(RESULTS / f"payout-{label}.json") for label in args.payout_runs
    }
    if "payout" not in args.skip:
        for label in args.payout_runs:
            size, workers = label.split("x")
            output = RESULTS / f"payout-{label}.json"
            output.unlink(missing_ok=True)
            step(
                f"payout {label}",
                f"payout cycle of {int(size):,} with {workers} worker processes",
                [
                    python,
                    "bench/payout_bench.py",
                    "--installments",
                    size,
                    "--worker-processes",
                    workers,
                    "--output",
                    str(output),
                ],
            )
            payout[label] = load(output)
    if "reporting" not in args.skip:
        step(
            "reporting",
            "reporting queries, consumer and rebuild",
            [python, "bench/reporting_bench.py", "--beneficiaries", str(args.beneficiaries)],
        )
    main_job_path = RESULTS / "main-job.json"
    if "main-job" not in args.skip:
        main_job_path.unlink(missing_ok=True)
        step(
            "main job",
            "the main job on the embedded default",
            [
                str(Path(python).parent / "benefits"),
                "demo",
                "--no-stay",
                "--beneficiaries",
                str(args.main_job_beneficiaries),
                "--data-dir",
                str(ROOT / ".run" / "bench-main-job"),
                "--report",
                str(main_job_path),
            ],
        )

    baselines = load(RESULTS / "baselines.json")
    rows = (
        ceiling_rows(baselines)
        + intake_rows(load(RESULTS / "intake.json"), baselines, sampler.peak_mb)
        + payout_rows(payout, baselines)
        + reporting_rows(load(RESULTS / "reporting.json"))
        + main_job_rows(load(main_job_path))
        + [Row(name, "did not finish", status="failed") for name in failed]
    )
    summary = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [asdict(row) for row in rows],
        "durations_s": durations,
        "load_average": os.getloadavg(),
    }
    summary_path = RESULTS / "summary.json"
    previous = load(summary_path)
    if args.table_only:  # nothing was measured: the summary files stay as the last run left them
        print_table(rows, _rows_by_measure(load(RESULTS / "previous-summary.json")))
        return
    if previous:
        (RESULTS / "previous-summary.json").write_text(
            json.dumps(previous, indent=2, ensure_ascii=False)
        )
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print_table(rows, _rows_by_measure(previous))


def _rows_by_measure(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # Earlier summaries kept rows as lists: measure, rate, latency, aim.
    return {
        (row["measure"] if isinstance(row, dict) else row[0]): (
            row if isinstance(row, dict) else {"result": row[1] or row[2]}
        )
        for row in summary.get("rows", [])
    }


if __name__ == "__main__":
    main()
