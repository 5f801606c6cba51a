"""One claim's trace crosses the services: the HTTP request at intake, the outbox row, the Kafka
headers, and the consumers in payout and reporting all share its trace id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.demo.test_demo import ROOT, free_port

CLAIM = {
    "portal_dossier_id": "",
    "scheme": "UNEMPLOYMENT",
    "applicant": {
        "national_id": "026090001234",
        "full_name": "Nguyễn Văn An",
        "date_of_birth": "1990-05-01",
        "si_number": "2612345678",
    },
    "address": {"commune_code": "08707", "list_date": "2023-05-07"},
    "payment": {"method": "OWN_ACCOUNT", "bank_bin": "970436", "account_number": "0011223344"},
}


def spans(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_one_claims_spans_cross_intake_payout_and_reporting(
    tmp_path, pg_database, kafka_bootstrap
):
    trace_file = tmp_path / "spans.jsonl"
    ports = {name: free_port() for name in ("INTAKE", "PAYOUT", "REPORTING")}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTAKE_", "PAYOUT_", "REPORTING_"))
    }
    prefix = f"trace{uuid.uuid4().hex[:8]}."
    for name, port in ports.items():
        env[f"{name}_PORT"] = str(port)
        env[f"{name}_DATABASE_URL"] = await pg_database(name.lower())
        env[f"{name}_KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
        env[f"{name}_TOPIC_PREFIX"] = prefix
    env["BENEFITS_TRACE_FILE"] = str(trace_file)
    stack = subprocess.Popen(
        [sys.executable, "-m", "services.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    intake = f"http://127.0.0.1:{ports['INTAKE']}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{intake}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        token = httpx.post(
            f"{intake}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("portal", "portal-dev-secret"),
            timeout=30,
        ).json()["access_token"]
        response = httpx.post(
            f"{intake}/v1/claims",
            json={**CLAIM, "portal_dossier_id": f"TRACE-{uuid.uuid4().hex[:8]}"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text

        def the_claims_trace() -> dict[str, set[str]]:
            recorded = spans(trace_file)
            filing = [
                s for s in recorded if s["name"] == "POST /v1/claims" and s["service"] == "intake"
            ]
            if not filing:
                return {}
            trace_id = filing[-1]["trace_id"]
            by_service: dict[str, set[str]] = {}
            for span in recorded:
                if span["trace_id"] == trace_id:
                    by_service.setdefault(span["service"], set()).add(span["name"])
            return by_service

        deadline = time.monotonic() + 60
        trace = the_claims_trace()
        while time.monotonic() < deadline and not {"intake", "payout", "reporting"} <= set(trace):
            time.sleep(0.3)
            trace = the_claims_trace()
        assert {"intake", "payout", "reporting"} <= set(trace), trace
        assert "consume vn.benefits.intake.claim-received.v1" in trace["reporting"]
        assert any(name.startswith("consume vn.benefits.intake.") for name in trace["payout"])
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=60)
