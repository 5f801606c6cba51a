"""`benefits`: the operator's command line. `benefits demo` runs the whole system on a generated
province; the other commands operate a running installation."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Cashless social-security payments: operate the services or run the demo.",
    no_args_is_help=True,
)
infra = typer.Typer(help="The real PostgreSQL and Kafka on this machine.", no_args_is_help=True)
cycle = typer.Typer(help="Monthly payment cycles.", no_args_is_help=True)
imports = typer.Typer(help="Spreadsheets from the agencies and localities.", no_args_is_help=True)
app.add_typer(infra, name="infra")
app.add_typer(cycle, name="cycle")
envelopes = typer.Typer(help="Funds envelopes: each agency's budget.", no_args_is_help=True)
app.add_typer(imports, name="import")
app.add_typer(envelopes, name="envelopes")
console = Console()
ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "payout", "reporting")
# About Vĩnh Phúc's monthly payees across the schemes (national totals over 63 provinces).
PROVINCE = 100_000
SMALL_PROVINCE = 2_000


def _script(name: str, *args: str) -> None:
    raise typer.Exit(subprocess.call([str(ROOT / "scripts" / name), *args]))


@infra.command("up")
def infra_up() -> None:
    """Install when missing and start PostgreSQL, then the Kafka broker."""
    _script("infra.sh", "up")


@infra.command("down")
def infra_down() -> None:
    """Stop Kafka, then PostgreSQL."""
    _script("infra.sh", "down")


@infra.command("status")
def infra_status() -> None:
    _script("infra.sh", "status")


@app.command()
def migrate(
    service: str | None = typer.Argument(None, help="intake, payout or reporting; all by default"),
) -> None:
    """Bring the services' databases to their latest schema."""
    for name in [service] if service else SERVICES:
        code = subprocess.call([sys.executable, "-m", f"services.{name}", "migrate"])
        if code:
            raise typer.Exit(code)
        console.print(f"[green]{name}[/] migrated")


@app.command()
def serve(sandbox: bool = typer.Option(False, help="also run the bank sandbox")) -> None:
    """Run the three services and their workers in one process until Ctrl-C."""
    from services import stack

    sys.argv = [sys.argv[0], *(["--sandbox"] if sandbox else [])]
    stack.main()


@app.command()
def rebuild() -> None:
    """Rebuild reporting's read models by replaying every topic."""
    raise typer.Exit(subprocess.call([sys.executable, "-m", "services.reporting", "rebuild"]))


INTAKE_URL = typer.Option("http://127.0.0.1:8001", envvar="BENEFITS_INTAKE_URL")
PAYOUT_URL = typer.Option("http://127.0.0.1:8002", envvar="BENEFITS_PAYOUT_URL")


@functools.cache
def _signed_in(intake_url: str, default_user: str = "administrator") -> dict[str, str]:
    """A person signs in at intake (once per command): `BENEFITS_USERNAME`/`BENEFITS_PASSWORD`,
    by default the development user named (services/intake/service_layer/users.py DEMO_USERS)."""
    from services.intake.service_layer.users import DEMO_USERS

    username = os.environ.get("BENEFITS_USERNAME", default_user)
    password = os.environ.get("BENEFITS_PASSWORD") or (
        DEMO_USERS[username].password if username in DEMO_USERS else ""
    )
    response = httpx.post(
        f"{intake_url}/oauth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=30,
    )
    if response.status_code != 200:
        raise typer.BadParameter(
            f"signing in as {username} at {intake_url} failed ({response.status_code})"
        )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _refused(response: httpx.Response) -> None:
    """A problem+json answer: print why, and stop with a failure."""
    if response.status_code >= 400:
        console.print(response.json())
        raise typer.Exit(1)


@cycle.command("run")
def cycle_run(
    period: str,
    intake_url: str = INTAKE_URL,
    payout_url: str = PAYOUT_URL,
    wait: bool = typer.Option(True, help="follow the cycle until it awaits approval or is paid"),
) -> None:
    """Prepare the cycle of PERIOD (YYYY-MM) as a maker (by default the development bhxh-maker):
    preparing it again creates nothing new, and nothing is sent before a checker approves."""
    headers = _signed_in(intake_url, "bhxh-maker")
    response = httpx.post(
        f"{payout_url}/v1/cycles", json={"period": period}, headers=headers, timeout=300
    )
    _refused(response)
    if wait:
        _follow_cycle(period, payout_url, headers)
    else:
        _print_cycle(response.json())


@cycle.command("approve")
def cycle_approve(
    period: str,
    agency: str = typer.Option(..., help="the paying agency whose part is approved"),
    reject: str | None = typer.Option(None, help="reject instead, with this reason"),
    intake_url: str = INTAKE_URL,
    payout_url: str = PAYOUT_URL,
) -> None:
    """Approve (or reject) exactly the totals of AGENCY's part of PERIOD that await approval, as
    a checker of the agency who prepared none of it (by default the development <agency>-checker)."""
    headers = _signed_in(intake_url, f"{agency.lower()}-checker")
    response = httpx.get(f"{payout_url}/v1/cycles/{period}", headers=headers, timeout=60)
    _refused(response)
    awaiting = (response.json().get("agencies", {}).get(agency) or {}).get("awaiting_approval")
    if not awaiting:
        console.print(f"nothing of {agency} awaits approval in {period}")
        raise typer.Exit(1)
    console.print(
        f"{agency} {period}: {awaiting['count']:,} installments, {awaiting['amount']:,} VND, "
        f"prepared by {', '.join(awaiting['prepared_by'])}"
    )
    decision = {"agency": agency, "digest": awaiting["digest"], "decision": "APPROVE"}
    if reject is not None:
        decision.update(decision="REJECT", reason=reject)
    response = httpx.post(
        f"{payout_url}/v1/cycles/{period}/approvals", json=decision, headers=headers, timeout=60
    )
    _refused(response)
    console.print(f"[green]{decision['decision']}[/] recorded")


@cycle.command("status")
def cycle_status(period: str, intake_url: str = INTAKE_URL, payout_url: str = PAYOUT_URL) -> None:
    """Counts and sums of a cycle's installments by state, and what awaits approval."""
    response = httpx.get(
        f"{payout_url}/v1/cycles/{period}", headers=_signed_in(intake_url), timeout=60
    )
    _refused(response)
    _print_cycle(response.json())


def _follow_cycle(period: str, payout_url: str, headers: dict[str, str]) -> None:
    """Until nothing is in flight, or the cycle waits for a checker (it never approves itself)."""
    with _progress() as bar:
        task = bar.add_task(f"cycle {period}", total=None)
        while True:
            body = httpx.get(f"{payout_url}/v1/cycles/{period}", headers=headers, timeout=60).json()
            by_state = body.get("by_state", {})
            total = sum(v["count"] for v in by_state.values())
            in_flight = sum(by_state.get(s, {}).get("count", 0) for s in ("SCHEDULED", "SUBMITTED"))
            bar.update(task, total=total, completed=total - in_flight)
            if body.get("approval_state") == "PREPARED" or (total and not in_flight):
                break
            time.sleep(0.5)
    _print_cycle(body)


def _print_cycle(body: dict[str, Any]) -> None:
    table = Table(title=f"cycle {body.get('period', '')} ({body.get('approval_state', '')})")
    table.add_column("state")
    table.add_column("installments", justify="right")
    table.add_column("VND", justify="right")
    for state, figures in sorted(body.get("by_state", {}).items()):
        table.add_row(state, f"{figures['count']:,}", f"{figures['sum']:,}")
    console.print(table)
    for agency, part in sorted(body.get("agencies", {}).items()):
        awaiting = part.get("awaiting_approval")
        if awaiting:
            console.print(
                f"{agency} awaits approval: {awaiting['count']:,} installments, "
                f"{awaiting['amount']:,} VND; `benefits cycle approve {body.get('period')} "
                f"--agency {agency}` as a checker of {agency}"
            )


@envelopes.command("load")
def envelopes_load(
    periods: list[str] = typer.Argument(..., help="the periods (YYYY-MM) the budgets are for"),
    file: Path | None = typer.Option(
        None, help="CSV agency,scheme,monthly_amount (whole đồng); the demo's budgets by default"
    ),
    intake_url: str = INTAKE_URL,
    payout_url: str = PAYOUT_URL,
) -> None:
    """Load each agency's monthly budget per scheme for PERIODS, as an administrator (by default
    the development administrator): a cycle part over its envelope cannot be approved."""
    from services.payout.adapters.envelope_data import envelope_rows

    rows = envelope_rows(periods, file.read_text(encoding="utf-8") if file else None)
    response = httpx.put(
        f"{payout_url}/v1/envelopes",
        json={"envelopes": rows},
        headers=_signed_in(intake_url),
        timeout=60,
    )
    _refused(response)
    console.print(f"[green]{response.json()['set']}[/] envelopes set")


def _upload(
    kind: str, path: Path, client_id: str, client_secret: str | None, intake_url: str
) -> None:
    token = httpx.post(
        f"{intake_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret or f"{client_id}-dev-secret"),
        timeout=30,
    )
    if token.status_code != 200:
        console.print(token.json())
        raise typer.Exit(1)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with path.open("rb") as handle:
        response = httpx.post(
            f"{intake_url}/v1/{kind}/uploads",
            files={"file": (path.name, handle)},
            headers=headers,
            timeout=600,
        )
    body = response.json()
    if response.status_code >= 400:
        console.print(body)
        raise typer.Exit(1)
    console.print({k: v for k, v in body.items() if not isinstance(v, list)})


@imports.command("roll")
def import_roll(
    path: Path,
    client_id: str = typer.Option(..., help="the agency's client, e.g. bhxh"),
    client_secret: str | None = typer.Option(None, envvar="BENEFITS_CLIENT_SECRET"),
    intake_url: str = typer.Option("http://127.0.0.1:8001"),
) -> None:
    """Register a beneficiary roll from a CSV or XLSX file."""
    _upload("roll", path, client_id, client_secret, intake_url)


@imports.command("accounts")
def import_accounts(
    path: Path,
    client_id: str = typer.Option(..., help="the agency's client, e.g. dolisa"),
    client_secret: str | None = typer.Option(None, envvar="BENEFITS_CLIENT_SECRET"),
    intake_url: str = typer.Option("http://127.0.0.1:8001"),
) -> None:
    """Update payment methods from a CSV or XLSX file collected by the localities."""
    _upload("payment-methods", path, client_id, client_secret, intake_url)


@app.command()
def demo(
    small: bool = typer.Option(
        False, "--small", help=f"a quick look: {SMALL_PROVINCE:,} people, 5% of the claims"
    ),
    beneficiaries: int | None = typer.Option(
        None,
        help=f"people on the monthly rolls (default {PROVINCE:,}; --small: {SMALL_PROVINCE:,})",
    ),
    months: int = typer.Option(12, min=1, max=12, help="monthly cycles to run, from January 2023"),
    seed: int = typer.Option(2023, help="the province is generated deterministically from it"),
    unemployment_scale: float | None = typer.Option(
        None,
        help="share of the article's Q1-2023 unemployment claims (2,203 filed, 1,533 approved) "
        "(default 1; --small: 0.05)",
    ),
    data_dir: Path = typer.Option(
        Path(".run/demo"), help="embedded databases and event log (wiped first)"
    ),
    stay: bool = typer.Option(True, help="keep serving the dashboard until Ctrl-C"),
    report: Path | None = typer.Option(None, help="also write the run's figures to this JSON file"),
) -> None:
    """Start the whole system with the bank sandbox, load a generated Vĩnh Phúc (a province's
    real size unless --small), run monthly cycles and print a summary and the dashboard's
    address."""
    from services.demo.run import run_demo

    if beneficiaries is None:
        beneficiaries = SMALL_PROVINCE if small else PROVINCE
    if unemployment_scale is None:
        unemployment_scale = 0.05 if small else 1.0

    code = asyncio.run(
        run_demo(
            console,
            beneficiaries=beneficiaries,
            months=months,
            seed=seed,
            unemployment_scale=unemployment_scale,
            data_dir=data_dir,
            stay=stay,
            report_path=report,
        )
    )
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
