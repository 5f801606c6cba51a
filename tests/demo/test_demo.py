"""`benefits demo` end to end: a small province, two monthly cycles, and figures that agree
between payout's ledger and reporting's read models, on both the embedded default and the real
PostgreSQL + Kafka."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import tokens

ROOT = Path(__file__).resolve().parents[2]
BENEFITS = str(Path(sys.executable).parent / "benefits")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(extra: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("INTAKE", "PAYOUT", "REPORTING", "SANDBOX")}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTAKE_", "PAYOUT_", "REPORTING_", "SANDBOX_"))
    }
    env.update({f"{name}_PORT": str(port) for name, port in ports.items()})
    # The demo's intake signs with the tests' key, so that the checks below can read as analysts.
    env.update(COLUMNS="200", **tokens.env("intake"), **extra)
    return env, ports


def run_demo_until_ready(
    env: dict[str, str], data_dir: Path, timeout: float = 600
) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            BENEFITS,
            "demo",
            "--beneficiaries",
            "150",
            "--unemployment-scale",
            "0.05",
            "--months",
            "2",
            "--data-dir",
            str(data_dir),
            "--report",
            str(data_dir / "report.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"the demo exited ({process.wait()}): {''.join(seen)[-3000:]}")
        seen.append(line)
        if "Demo ready" in line:
            process.printed = seen  # type: ignore[attr-defined]
            return process
    process.kill()
    pytest.fail(f"the demo was not ready in {timeout}s: {''.join(seen)[-3000:]}")


def check_figures_agree(ports: dict[str, int], report_path: Path) -> None:
    operator = {"Authorization": "Bearer " + tokens.token({"payout:read"}, sub="test")}
    # An analyst: every cell, small ones included, so the rows add up to the total.
    analyst = {
        "Authorization": "Bearer " + tokens.token({"reports:read", "reports:detail"}, sub="test")
    }
    payout = f"http://127.0.0.1:{ports['PAYOUT']}"
    reporting = f"http://127.0.0.1:{ports['REPORTING']}"
    report = json.loads(report_path.read_text())
    assert [c["period"] for c in report["cycles"]] == ["2023-01", "2023-02"]
    for period, reported in zip(("2023-01", "2023-02"), report["cycles"], strict=True):
        cycle = httpx.get(f"{payout}/v1/cycles/{period}", headers=operator, timeout=30).json()
        states = cycle["by_state"]
        assert reported["installments"] == sum(s["count"] for s in states.values())
        assert not {"SCHEDULED", "SUBMITTED"} & set(states), f"{period} still in flight: {states}"
        paid = [states[s] for s in ("SETTLED", "PAID_CASH") if s in states]
        paid_count = sum(s["count"] for s in paid)
        paid_sum = sum(s["sum"] for s in paid)
        assert paid_count > 100  # the roll, plus the unemployment decisions from February
        figures = httpx.get(
            f"{reporting}/v1/kpis", params={"period": period}, headers=analyst, timeout=30
        ).json()["figures"]
        assert figures["paid_count"] == paid_count
        assert figures["paid_amount"] == paid_sum, "reporting equals payout's ledger to the đồng"
        assert figures["cashless_count"] == states.get("SETTLED", {}).get("count", 0)
        # Prepared by a maker, approved by a second officer, before anything was paid.
        trail = httpx.get(
            f"{payout}/v1/cycles/{period}/approvals", headers=operator, timeout=30
        ).json()["items"]
        approved = [a for a in trail if a["decision"] == "APPROVE"]
        assert {a["agency"] for a in approved} >= {"BHXH", "DOLISA"}
        assert all(a["decided_by"] != a["prepared_by"] for a in approved)
        assert reported["approvals"] == len(approved)
        assert paid_sum <= sum(a["amount"] for a in approved), "nothing paid beyond the approvals"
    channels = httpx.get(
        f"{reporting}/v1/breakdowns/channel",
        params={"period": "2023-02"},
        headers=analyst,
        timeout=30,
    ).json()
    assert sum(row["paid_amount"] for row in channels["rows"]) == channels["total"]["paid_amount"]
    dashboard = httpx.get(f"{reporting}/", timeout=30, follow_redirects=True)
    assert dashboard.status_code == 200 and "<html" in dashboard.text.lower()


def benefits(ports: dict[str, int], *args: str, username: str | None = None) -> tuple[int, str]:
    """The operator's command line against the running demo, signed in as `username` (the
    command's own default development user when None)."""
    env = {k: v for k, v in os.environ.items() if k != "BENEFITS_USERNAME"}
    env.update(
        COLUMNS="200",
        BENEFITS_INTAKE_URL=f"http://127.0.0.1:{ports['INTAKE']}",
        BENEFITS_PAYOUT_URL=f"http://127.0.0.1:{ports['PAYOUT']}",
    )
    if username:
        env["BENEFITS_USERNAME"] = username
    done = subprocess.run(
        [BENEFITS, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    return done.returncode, done.stdout + done.stderr


def sign_in(ports: dict[str, int], username: str) -> dict[str, str]:
    """A person signs in at the demo's intake with the password the demo prints."""
    answer = httpx.post(
        f"http://127.0.0.1:{ports['INTAKE']}/oauth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": f"{username}-dev-password",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def check_a_newcomer_approves_the_period_left_and_hands_cash_over(
    ports: dict[str, int], printed: str
) -> None:
    """March is left prepared and unapproved: the demo says so; its checkers approve it as a
    newcomer would at the console (the same API), and the post-office user records a handover
    of their communes' cash, which the sandbox's post office leaves to them."""
    payout = f"http://127.0.0.1:{ports['PAYOUT']}"
    assert "Left for you at the console: 2023-03" in printed, printed[-3000:]
    assert "bhxh-checker" in printed and "post-office" in printed
    checker = sign_in(ports, "bhxh-checker")
    cycle = httpx.get(f"{payout}/v1/cycles/2023-03", headers=checker, timeout=30).json()
    assert cycle["approval_state"] == "PREPARED", cycle["approval_state"]
    assert not {"SUBMITTED", "SETTLED", "PAID_CASH"} & set(cycle["by_state"]), "nothing sent"
    for agency, part in cycle["agencies"].items():
        awaiting = part["awaiting_approval"]
        if not awaiting:
            continue
        approver = checker if agency == "BHXH" else sign_in(ports, f"{agency.lower()}-checker")
        answer = httpx.post(
            f"{payout}/v1/cycles/2023-03/approvals",
            json={"agency": agency, "digest": awaiting["digest"], "decision": "APPROVE"},
            headers=approver,
            timeout=30,
        )
        assert answer.status_code in (200, 201), answer.text
    staff = sign_in(ports, "post-office")
    deadline = time.monotonic() + 120
    items: list[dict] = []
    while time.monotonic() < deadline and not items:
        lists = httpx.get(
            f"{payout}/v1/cash-lists", params={"period": "2023-03"}, headers=staff, timeout=30
        ).json()["lists"]
        items = [i for lst in lists for i in lst["items"] if i["state"] == "SUBMITTED"]
        time.sleep(0.5)
    assert items, "the post-office user's communes have cash waiting for them"
    assert all(i["next_step"] == "HAND_OVER" for i in items)
    item = items[0]
    answer = httpx.post(
        f"{payout}/v1/cash-lists/items/{item['end_to_end_id']}/handover",
        json={"paid_on": "2023-03-10", "staff_id": "BD-DEMO-01"},
        headers=staff,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "PAID_CASH" and answer.json()["staff_id"] == "BD-DEMO-01"


def check_an_operator_prepares_and_two_checkers_approve(ports: dict[str, int]) -> None:
    """April, by the command line: prepared by an officer who is maker and checker, refused to
    them (four eyes) and to anyone while no envelope is loaded, approved by the checkers."""
    code, out = benefits(ports, "cycle", "run", "2023-04", username="bhxh-officer")
    assert code == 0 and "BHXH awaits approval" in out, out
    code, out = benefits(ports, "cycle", "approve", "2023-04", "--agency", "BHXH")
    assert code == 1 and "over-envelope" in out and "no envelope loaded" in out, out
    code, out = benefits(ports, "envelopes", "load", "2023-04")
    assert code == 0 and "envelopes set" in out, out
    code, out = benefits(
        ports, "cycle", "approve", "2023-04", "--agency", "BHXH", username="bhxh-officer"
    )
    assert code == 1 and "four-eyes" in out, out
    code, out = benefits(ports, "cycle", "approve", "2023-04", "--agency", "BHXH")
    assert code == 0 and "APPROVE recorded" in out, out
    code, out = benefits(ports, "cycle", "approve", "2023-04", "--agency", "DOLISA")
    assert code == 0 and "APPROVE recorded" in out, out
    code, out = benefits(ports, "cycle", "run", "2023-04")  # again: nothing new, followed to paid
    assert code == 0 and "SETTLED" in out and "SCHEDULED" not in out, out


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=60) == 0
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the demo did not stop on Ctrl-C")


class TestDemo:
    def test_embedded_default_settles_cycles_and_figures_agree(self, tmp_path):
        env, ports = demo_env({})
        process = run_demo_until_ready(env, tmp_path / "demo")
        try:
            check_figures_agree(ports, tmp_path / "demo" / "report.json")
            check_a_newcomer_approves_the_period_left_and_hands_cash_over(
                ports, "".join(process.printed)
            )
            check_an_operator_prepares_and_two_checkers_approve(ports)
        finally:
            stop(process)

    async def test_real_postgres_and_kafka_settle_cycles_and_figures_agree(
        self, tmp_path, pg_database, kafka_bootstrap
    ):
        prefix = f"demo{uuid.uuid4().hex[:8]}."
        extra = {}
        for name in ("INTAKE", "PAYOUT", "REPORTING"):
            extra[f"{name}_DATABASE_URL"] = await pg_database(name.lower())
            extra[f"{name}_KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
            extra[f"{name}_TOPIC_PREFIX"] = prefix
        env, ports = demo_env(extra)
        process = run_demo_until_ready(env, tmp_path / "demo")
        try:
            check_figures_agree(ports, tmp_path / "demo" / "report.json")
        finally:
            stop(process)
