"""The embedded default (SQLite files and the embedded event log, nothing installed): the worker
projects, and `python -m services.reporting rebuild` replays to identical figures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.reporting.support import events as ev
from tests.reporting.support.scenarios import mixed_history
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class TestEmbeddedDefault:
    async def test_project_then_rebuild_from_the_command_line(self, reporting_embedded, tmp_path):
        reporting = reporting_embedded
        payloads, expected = mixed_history(beneficiaries=30, seed=3)
        reporting.start_worker()
        await reporting.publish(payloads)
        await reporting.wait_caught_up()
        kpis = await reporting.kpis()
        assert kpis["people_paid"] == sum(expected.people.values())
        assert kpis["paid_amount"] == sum(expected.paid_amount.values())
        models, figures = await reporting.read_models(), await reporting.api_figures()

        env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTING_")}
        env["REPORTING_DATA_DIR"] = str(
            tmp_path
        )  # the same SQLite file and event log as the worker
        env["REPORTING_ENVIRONMENT"] = "development"  # a local run asks for it
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.reporting", "rebuild", "--timeout", "120"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "rebuilt generation 2" in done.stdout

        assert await reporting.read_models() == models
        assert await reporting.api_figures() == figures
        late = ev.facts("late", "late-person", "2023-06", 777_777)
        await reporting.publish([ev.settled(late)])

        async def counted() -> bool:
            return (await reporting.kpis())["paid_amount"] == figures["kpis"][
                "paid_amount"
            ] + 777_777

        await wait_until(counted, 30, message="the worker on the rebuilt generation")
        assert (await reporting.get("/v1/freshness"))["generation"] == 2
