"""No personal data in the logs of a full demo run: `benefits demo` (every service, the workers,
the bank sandbox, a generated province, two monthly cycles) with all of its output captured,
searched for every generated CCCD, account number and full name."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.demo.province import generate
from services.sandbox.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
BENEFITS = str(Path(sys.executable).parent / "benefits")
BENEFICIARIES = 120
SEED = 2023


def _personal_data() -> dict[str, set[str]]:
    province = generate(seed=SEED, beneficiaries=BENEFICIARIES, unemployment_scale=0.05)
    people = [entry.person for entry in province.roll] + [claim.person for claim in province.unemployment]
    representatives = [
        collected.representative.person
        for entry in province.roll for collected in entry.methods if collected.representative is not None
    ]
    everyone = people + representatives
    accounts = province.accounts()
    return {
        "CCCD": {p.national_id for p in everyone},
        "account number": {a.account_number for a in accounts},
        "full name": {p.full_name for p in everyone} | {a.holder_name for a in accounts},
    }


def test_a_full_demo_run_logs_no_personal_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "PAYOUT_", "REPORTING_", "SANDBOX_"))}
    env.update({f"{name}_PORT": str(free_port()) for name in ("INTAKE", "PAYOUT", "REPORTING", "SANDBOX")})
    env["COLUMNS"] = "200"
    run = subprocess.run(
        [BENEFITS, "demo", "--beneficiaries", str(BENEFICIARIES), "--months", "2", "--seed", str(SEED),
         "--no-stay", "--data-dir", str(tmp_path / "demo")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    logs = run.stdout.decode("utf-8", errors="replace")
    (tmp_path / "demo.log").write_text(logs, encoding="utf-8")
    assert run.returncode == 0, logs[-3000:]
    assert "Demo ready" in logs  # the run went all the way: there was something to leak

    data = _personal_data()
    assert all(data.values()) and len(data["CCCD"]) >= BENEFICIARIES
    # The same province as the run: its people are in the run's databases (where they belong).
    stored = b"".join(path.read_bytes() for path in (tmp_path / "demo").rglob("*.db"))
    roll = [entry.person.national_id for entry in generate(seed=SEED, beneficiaries=BENEFICIARIES,
                                                           unemployment_scale=0.05).roll]
    assert sum(cccd.encode() in stored for cccd in roll) >= 0.9 * len(roll)
    leaks = {kind: sorted(v for v in values if v in logs) for kind, values in data.items()}
    assert not any(leaks.values()), {kind: found[:5] for kind, found in leaks.items() if found}
