"""The fault run, smaller: 2,000 installments through the real payout, sandbox and reporting
processes on PostgreSQL and Kafka, with the injected faults (ambiguous answers after the bank took a
request and answers slower than the lease included; the ISO file bank's batch bookings, pending
entries, reversals and late returns), payout workers killed with SIGKILL three
times, one Kafka restart and one PostgreSQL restart in the middle of the cycle; then no
installment and no person paid twice for one scheme and period, none lost, reconciliation clean
and every total equal to the đồng, the money that came back included.

It restarts the shared PostgreSQL and Kafka (tests run one at a time) and waits until both answer
again before it ends."""

from __future__ import annotations

import json

from bench.fault_run import FaultRunConfig, fault_run, table
from bench.faults import infra


async def test_cycle_under_faults_kills_and_restarts_pays_each_installment_once_and_totals_agree(
    tmp_path,
) -> None:
    config = FaultRunConfig(
        installments=2_000,
        kills=3,
        kafka_restarts=1,
        postgres_restarts=1,
        worker_processes=2,
        batch_size=25,
        submit_concurrency=2,
        latency_ms=150,
        bank_read_timeout_seconds=2.0,
        timeout_hold_seconds=3.0,
        lease_seconds=8.0,
        status_inquiry_after_seconds=5.0,
        webhook_batch_size=20,
        first_disruption_at=0.05,
        last_disruption_at=0.6,
        min_gap_seconds=2.0,
        # The database first: the broker's restart takes half a minute, the cycle not much more.
        infra_order=("postgres_restart", "kafka_restart"),
        timeout=180.0,
        settle_timeout=90.0,
        run_dir=tmp_path / "logs",
        echo=lambda line: None,
    )
    try:
        result = await fault_run(config)
    finally:
        await infra.wait_healthy(timeout=180)
    assert await infra.healthy()
    (tmp_path / "fault_run.json").write_text(json.dumps(result, indent=2, default=str))
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, table(result) + "\n" + json.dumps(failed, indent=2, default=str)[:6000]
    assert result["disruptions"]["done"] == {"kill": 3, "kafka_restart": 1, "postgres_restart": 1}
    assert sum(result["states"].values()) == 2_000
    # The disruptions hit a cycle in progress, not one already over.
    assert all(event["open_installments"] > 0 for event in result["disruptions"]["events"]), result[
        "disruptions"
    ]["events"]
