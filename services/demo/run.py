"""`benefits demo`: the whole system, a generated province and a year of monthly cycles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from services.console.stack import console_url, with_console
from services.demo.loader import (
    POST_OFFICE_USER,
    PREPARER,
    DemoDriver,
    Endpoints,
    LoadReport,
    recorded_deceased,
)
from services.demo.province import generate
from services.intake import bootstrap as intake
from services.intake.settings import IntakeSettings
from services.payout import bootstrap as payout
from services.payout.settings import PayoutSettings
from services.reporting import bootstrap as reporting
from services.reporting.consumers.projections import group_name
from services.reporting.settings import ReportingSettings
from services.stack import ServiceSpec, Stack
from shared.settings import trusting_local_intake


def _vnd_billions(amount: int) -> str:
    # Vietnamese style: '.' groups thousands, ',' marks decimals (212,7 tỷ đồng).
    return f"{amount / 1e9:,.1f}".replace(",", "_").replace(".", ",").replace("_", ".") + " tỷ đồng"


class RateColumn(ProgressColumn):
    """Items per second over the last few updates (rich's own speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


def _specs(data_dir: Path) -> tuple[list[ServiceSpec], bool]:
    real = any(os.environ.get(f"{n}_DATABASE_URL") for n in ("INTAKE", "PAYOUT", "REPORTING"))
    overrides: dict[str, Any] = {} if real else {"data_dir": data_dir}
    from services.sandbox import SandboxSettings

    sandbox = SandboxSettings()
    payout_overrides = dict(overrides)
    if not os.environ.get("PAYOUT_SCHEDULER_ENABLED"):  # the demo runs 2023's cycles itself
        payout_overrides["scheduler_enabled"] = False
    if not os.environ.get("PAYOUT_BANK_BASE_URL"):  # the banks are the sandbox we start
        payout_overrides["bank_base_url"] = f"http://{sandbox.host}:{sandbox.port}"
    # So is the population registry; intake's revalidation reads its settings from the environment.
    os.environ.setdefault("INTAKE_POPULATION_REGISTRY_URL", f"http://{sandbox.host}:{sandbox.port}")
    # The demo signs in with the development clients and the sandbox's development webhook secrets:
    # development, unless `*_ENVIRONMENT` says otherwise (then it refuses to start, as it should).
    intake_settings = IntakeSettings.for_local_run(**overrides)
    payout_overrides.update(trusting_local_intake(PayoutSettings, intake_settings))
    reporting_overrides = {**overrides, **trusting_local_intake(ReportingSettings, intake_settings)}
    specs = [
        ServiceSpec("intake", intake_settings, intake.create_app, intake),
        ServiceSpec(
            "payout", PayoutSettings.for_local_run(**payout_overrides), payout.create_app, payout
        ),
        ServiceSpec(
            "reporting",
            ReportingSettings.for_local_run(**reporting_overrides),
            reporting.create_app,
            reporting,
        ),
    ]
    return with_console(specs), real


async def run_demo(
    console: Console,
    *,
    beneficiaries: int,
    months: int,
    seed: int,
    unemployment_scale: float,
    data_dir: Path,
    stay: bool,
    report_path: Path | None = None,
) -> int:
    began = time.monotonic()
    from shared.tracing import configure_tracing_from_env

    configure_tracing_from_env()
    specs, real = _specs(data_dir)
    if not real:
        _empty_directory(data_dir)
    stack = Stack(specs=specs, with_sandbox=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stack.stop.set)
    console.print(
        f"[bold]Starting[/] intake, payout, reporting and the bank sandbox "
        f"({'PostgreSQL + Kafka' if real else 'embedded: SQLite + embedded event log in ' + str(data_dir)})"
    )
    await stack.start()
    dashboard = f"{stack.url('reporting')}/"
    console.print(
        f"Services up in {time.monotonic() - began:.1f} s; dashboard at [link]{dashboard}[/], "
        f"officers' console at [link]{console_url(specs)}[/]"
    )
    intake_runtime = stack.runtime("intake")
    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def report_progress(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = progress.add_task(label, total=total)
        progress.update(tasks[label], completed=done, total=total)

    driver = DemoDriver(
        Endpoints(
            stack.url("intake"), stack.url("payout"), stack.url("reporting"), stack.sandbox_url
        ),
        stack.runtime("payout").bus,
        intake_runtime.relay().pending_count,
        report_progress,
    )
    report = LoadReport()
    code = 0
    try:
        generated = time.monotonic()
        province = generate(
            seed, beneficiaries=beneficiaries, unemployment_scale=unemployment_scale
        )
        report.phases["province generated"] = time.monotonic() - generated
        periods = [f"2023-{month:02d}" for month in range(1, months + 1)]
        driver.plan(province, periods)
        with progress:
            timed = report.timed
            accounts = await timed("bank accounts", driver.seed_banks(province))
            await timed(
                "population registry",
                driver.seed_population(province, recorded_deceased(province)),
            )
            await timed("envelopes, calendar", driver.load_envelopes_and_calendar(periods))
            await timed("roll", driver.load_roll(province, "2023-01", report))
            for together in driver.paid_together(periods):
                if stack.stop.is_set():
                    break
                for period in together:
                    await timed(
                        "account collection", driver.collect_accounts(province, period, report)
                    )
                    await timed(
                        "unemployment claims", driver.file_unemployment(province, period, report)
                    )
                await timed("events to payout", driver.settle_events())
                report.months.extend(await timed("cycles", driver.run_cycles(together)))
            waiting = None
            if stay and report.months and not stack.stop.is_set():
                try:
                    waiting = await timed(
                        "left for the console",
                        driver.leave_for_the_console(report.months[-1].period),
                    )
                except (httpx.HTTPError, TimeoutError) as exc:
                    # A convenience for a newcomer: the year itself is paid and ready.
                    console.print(f"[yellow]no period left for the console:[/] {exc}")
            generation = (await driver.http.get(f"{stack.url('reporting')}/v1/freshness")).json()[
                "generation"
            ]
            await timed(
                "reporting catch-up",
                driver.reporting_caught_up(
                    group_name(generation), stack.runtime("payout").relay().pending_count
                ),
            )
        last = report.months[-1].period if report.months else "2023-01"
        summary = await driver.summary(last)
        ready = time.monotonic() - began
        if report_path is not None:  # written before "ready" is said: a reader may act on it
            _write_report(report_path, report, beneficiaries=beneficiaries, real=real, ready=ready)
        _print_summary(console, report, summary, accounts)
        _print_sign_in(console, console_url(specs))
        if waiting is not None:
            _print_waiting(console, waiting)
        console.print(f"Demo ready in {ready:.1f} s. Dashboard: [link]{dashboard}[/]")
    except Exception as exc:
        # An HTTP error names the call that failed (its method and path: no query, no body).
        during = ""
        if isinstance(exc, httpx.HTTPError):
            with contextlib.suppress(RuntimeError):  # an error raised before any request
                during = f" ({exc.request.method} {exc.request.url.path})"
        console.print(f"[red]demo failed:[/] {type(exc).__name__}{during}: {exc}")
        code = 1
    finally:
        await driver.close()
    if stay and code == 0 and not stack.stop.is_set():
        console.print(
            f"Dashboard: [link]{dashboard}[/]  Console: [link]{console_url(specs)}[/]  "
            "(Ctrl-C stops everything)"
        )
        await stack.stop.wait()
    await stack.shutdown()
    console.print("stopped")
    return code


def _print_summary(
    console: Console,
    report: LoadReport,
    summary: dict,
    accounts: int,
) -> None:
    console.print(
        f"Rolls: {report.roll_taken:,} registered, {report.roll_refused:,} refused; "
        f"accounts collected: {report.methods_taken:,}; bank accounts in the sandbox: {accounts:,}; "
        f"unemployment claims filed: {report.claims_filed:,}, decided: {report.decisions:,}"
    )
    for refusal in report.refusals[:5]:
        console.print(f"  refused: {refusal}")
    cycles = Table(title="Monthly cycles")
    for column in (
        "period",
        "installments",
        "settled",
        "paid in cash",
        "failed",
        "on hold",
        "seconds",
    ):
        cycles.add_column(column, justify="right")
    for month in report.months:
        s = month.by_state
        cycles.add_row(
            month.period,
            f"{month.installments:,}",
            f"{s.get('SETTLED', 0):,}",
            f"{s.get('PAID_CASH', 0):,}",
            f"{s.get('FAILED', 0) + s.get('RETURNED', 0):,}",
            f"{s.get('ON_HOLD', 0):,}",
            f"{month.seconds:.1f}",
        )
    console.print(cycles)
    approvals = Table(title="Approvals (prepared by a maker, approved by a second officer)")
    for column in ("period", "agency", "decision", "installments", "amount", "approved by"):
        approvals.add_column(
            column, justify="right" if column in ("installments", "amount") else "left"
        )
    for month in report.months:
        for item in month.approvals:
            approvals.add_row(
                month.period,
                str(item["agency"]),
                str(item["decision"]),
                f"{int(item['count']):,}",
                _vnd_billions(int(item["amount"])),
                str(item.get("decided_by_name") or item.get("decided_by")),
            )
    console.print(approvals)
    held: dict[str, int] = {}
    for month in report.months:
        for reason, count in month.held.items():
            held[reason] = held.get(reason, 0) + count
    if held:
        console.print(
            "Held over the year (installment-months): "
            + ", ".join(f"{reason} {count:,}" for reason, count in sorted(held.items()))
        )
    targets = Table(title="Targets")
    for column in (
        "target",
        "period",
        "cashless share",
        "gap (points)",
        "trend (points/month)",
        "reached by",
        "status",
    ):
        targets.add_column(column)
    for item in summary["targets"]["targets"]:
        targets.add_row(
            item["target"]["title_en"],
            str(item["period"]),
            f"{item['share_percent']}%",
            str(item["gap_pp"]),
            str(item["trend_pp_per_month"]),
            str(item["projected_date"]),
            item["status"],
        )
    console.print(targets)
    figures = summary["kpis"]["figures"]
    console.print(
        f"Last period: {figures['people_paid']:,} people paid, {figures['people_cashless']:,} without cash "
        f"({figures['cashless_share_percent']}%), {_vnd_billions(figures['paid_amount'])} paid"
    )
    phases = Table(title="Where the time went")
    phases.add_column("phase")
    phases.add_column("seconds", justify="right")
    for phase, spent in report.phases.items():
        phases.add_row(phase, f"{spent:.1f}")
    console.print(phases)


def _print_sign_in(console: Console, console_address: str) -> None:
    """The development users a newcomer signs in with at the console."""
    from services.intake.service_layer.users import DEMO_USERS

    users = Table(
        title=f"Sign in at {console_address}: development users, password <username>-dev-password"
    )
    for column in ("username", "roles", "agency", "communes"):
        users.add_column(column, no_wrap=column == "username")
    for username, user in DEMO_USERS.items():
        assert user.password == f"{username}-dev-password"  # what the title says
        communes = ", ".join(user.communes[:3]) + (" …" if len(user.communes) > 3 else "")
        users.add_row(username, ", ".join(user.roles), user.agency or "", communes)
    console.print(users)


def _print_waiting(console: Console, waiting: dict[str, Any]) -> None:
    """What the run left for people at the console: a prepared period for each agency's checker,
    and, once it is approved, the cash the post-office user hands over."""
    period = waiting["period"]
    table = Table(title=f"Left for you at the console: {period}, prepared by {PREPARER}")
    for column in ("agency", "awaits approval", "VND", "sign in as"):
        table.add_column(
            column, justify="right" if column in ("awaits approval", "VND") else "left"
        )
    for agency, part in sorted(waiting["agencies"].items()):
        awaiting = part.get("awaiting_approval")
        if awaiting:
            table.add_row(
                agency,
                f"{awaiting['count']:,}",
                f"{awaiting['amount']:,}",
                f"{agency.lower()}-checker",
            )
    console.print(table)
    console.print(
        f"Once a checker approves {period}, its {waiting['cash']:,} cash payments in the "
        f"{len(waiting['communes'])} communes {POST_OFFICE_USER} serves wait for them to record "
        "each handover (or return) under Cash lists."
    )


def _write_report(
    path: Path, report: LoadReport, *, beneficiaries: int, real: bool, ready: float
) -> None:
    """The run's figures as JSON, for the benchmark table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "backend": "postgresql+kafka" if real else "embedded",
        "beneficiaries": beneficiaries,
        "ready_seconds": round(ready, 1),
        "installments": sum(month.installments for month in report.months),
        "phases_s": {phase: round(spent, 1) for phase, spent in report.phases.items()},
        "cycles": [
            {
                "period": month.period,
                "installments": month.installments,
                "seconds": round(month.seconds, 1),
                "by_state": month.by_state,
                "approvals": len(month.approvals),
                "held": month.held,
            }
            for month in report.months
        ],
    }
    path.write_text(json.dumps(figures, indent=2))


def _empty_directory(path: Path) -> None:
    """A fresh embedded run starts from nothing (the demo's own data folder only)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
