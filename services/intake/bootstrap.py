"""Wiring of the intake service: app factory, workers and command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from services.intake.adapters.orm import metadata
from services.intake.api import (
    audit,
    beneficiaries,
    claims,
    oauth,
    stop_proposals,
    unemployment,
    uploads,
    users,
)
from services.intake.api.common import install_error_handlers
from services.intake.api.filing_batch import FilingBatcher
from services.intake.consumers.account_verification import account_verification_consumer
from services.intake.consumers.cycles import cycle_consumer
from services.intake.service_layer import clients
from services.intake.service_layer import users as people
from services.intake.service_layer.common import IntakeUnitOfWork
from services.intake.settings import IntakeSettings
from services.intake.workers import run_revalidation
from shared.app import build_app
from shared.auth import StaticKeySet, TrustedIssuer, verifier_for
from shared.db import is_sqlite, make_engine
from shared.outbox import Outbox
from shared.runtime import Runtime, run_relay, service_main
from shared.uow import unit_of_work

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)

DESCRIPTION = """
Claims from the National Public Service Portal, decisions of the agencies (BHXH, DOLISA, the
Employment Service Centre), the roll of existing monthly beneficiaries and the payment-method
registry.

**Access**: `POST /oauth/token`: machine clients with OAuth2 client credentials (HTTP Basic or
form fields), people with `grant_type=password` (username and password; five wrong ones in a
row lock the account for 15 minutes); send `Authorization: Bearer <token>`. Tokens are signed
with intake's Ed25519 key (EdDSA); its public keys are at `/.well-known/jwks.json`. Scopes: `claims:write`, `claims:read`, `decisions:write`,
`roll:write`, `payment-methods:write`, `beneficiaries:read`, `pii:read` (unmasked CCCD, names,
dates of birth, SI and account numbers), `audit:read`. An agency's client acts only on the
people and entitlements its agency pays and on the claims of its schemes (403 otherwise); the
portal reads only the claims it filed. In development the clients `portal`, `bhxh`, `dolisa`, `esc` and
`admin` exist with the secret `<id>-dev-secret`, and the users of
`services/intake/service_layer/users.py` (`DEMO_USERS`) with the password
`<username>-dev-password`.

**Errors** are RFC 9457 `application/problem+json`; a 422 names each offending field with a JSON
Pointer. **Idempotency**: filing a claim is idempotent on `portal_dossier_id`, a decision on the
claim: the same body replays the first answer (`Idempotent-Replayed: true`), a different one is
a 409.
"""


async def _on_startup(app: FastAPI, runtime: Runtime) -> None:
    settings = runtime.settings
    # PostgreSQL: concurrent filings share transactions (group commit); SQLite writes one at a time.
    app.state.filing_batcher = (
        None
        if is_sqlite(runtime.engine)
        or not isinstance(settings, IntakeSettings)
        or not settings.filing_batch_size
        else FilingBatcher(
            runtime.engine,
            runtime.outbox,
            settings.filing_batch_size,
            settings.filing_batch_wait_ms / 1000,
        )
    )
    if isinstance(settings, IntakeSettings) and settings.seeds_dev_clients:
        try:
            async with unit_of_work(
                runtime.engine, runtime.outbox, clients.SEEDER, kind=IntakeUnitOfWork
            ) as uow:
                added = await clients.seed_dev_clients(uow)
        except DBAPIError:
            log.warning(
                "development clients not seeded: run `python -m services.intake migrate` first"
            )
            return
        if added:
            log.info("development clients added", extra={"fields": {"clients": added}})
        async with unit_of_work(
            runtime.engine, runtime.outbox, people.SEEDER, kind=IntakeUnitOfWork
        ) as uow:
            seeded = await people.seed_demo_users(uow)
        if seeded:
            log.info("development users added", extra={"fields": {"users": seeded}})


async def _on_shutdown(app: FastAPI, runtime: Runtime) -> None:
    batcher = getattr(app.state, "filing_batcher", None)
    if batcher is not None:
        await batcher.close()


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    app = build_app(
        settings,
        metadata,
        title="Intake: claims, decisions, the beneficiary roll and payment methods",
        description=DESCRIPTION,
        routers=[
            oauth.router,
            users.router,
            claims.router,
            unemployment.router,
            uploads.router,
            beneficiaries.router,
            stop_proposals.router,
            audit.router,
        ],
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
    )
    install_error_handlers(app)
    install_token_keys(app, settings)
    return app


def install_token_keys(app: FastAPI, settings: IntakeSettings) -> None:
    """Intake's signing key (generated in development when missing) and the verifier of its own
    tokens, with the configured external issuer's too."""
    key = settings.signing_key()
    app.state.signing_key = key
    own = TrustedIssuer(settings.token_issuer, StaticKeySet(key.jwks()), settings.oidc_audience)
    app.state.token_verifier = verifier_for(settings, own)


def workers(runtime: Runtime, stop: asyncio.Event) -> Sequence[Awaitable[None]]:
    return [
        run_relay(runtime, stop),
        account_verification_consumer(runtime).run(stop),
        cycle_consumer(runtime).run(stop),
        run_revalidation(runtime, stop),
    ]


# --- command line ------------------------------------------------------------------------------


def _clients_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.intake clients",
        description="Manage the API clients (OAuth2 client credentials).",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="register a client (or re-key it with --replace)")
    add.add_argument("--id", required=True, dest="client_id")
    add.add_argument("--secret", help="generated and printed when omitted")
    add.add_argument(
        "--scopes", required=True, help=f"space- or comma-separated: {' '.join(clients.SCOPES)}"
    )
    add.add_argument(
        "--agency", choices=["BHXH", "DOLISA", "ESC"], help="the agency this client acts for"
    )
    add.add_argument("--description")
    add.add_argument("--replace", action="store_true")
    sub.add_parser("list", help="list the clients")
    for name in ("disable", "enable"):
        p = sub.add_parser(name, help=f"{name} a client")
        p.add_argument("--id", required=True, dest="client_id")
    args = parser.parse_args(argv)
    settings = IntakeSettings()

    async def run() -> int:
        url = settings.resolved_database_url()
        engine = make_engine(url)
        # Client changes emit no events; the unit of work still wants the service's outbox.
        outbox = Outbox(metadata.tables["outbox"], settings.service_name, notify=not is_sqlite(url))

        def operator() -> AbstractAsyncContextManager[IntakeUnitOfWork]:
            return unit_of_work(engine, outbox, clients.OPERATOR, kind=IntakeUnitOfWork)

        try:
            if args.action == "add":
                scopes = [s for s in args.scopes.replace(",", " ").split() if s]
                try:
                    async with operator() as uow:
                        secret = await clients.add_client(
                            uow,
                            args.client_id,
                            args.secret,
                            scopes,
                            args.agency,
                            args.description,
                            args.replace,
                        )
                except clients.BadClient as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                print(
                    f"client {args.client_id} registered with scopes: {' '.join(sorted(set(scopes)))}"
                )
                if not args.secret:
                    print(f"secret (shown once): {secret}")
            elif args.action == "list":
                async with engine.connect() as conn:
                    listed = await clients.list_clients(conn)
                for c in listed:
                    state = "active" if c.active else "disabled"
                    print(
                        f"{c.client_id}\t{state}\t{c.agency or '-'}\t{' '.join(sorted(c.scopes))}"
                    )
            else:
                async with operator() as uow:
                    changed = await clients.set_active(uow, args.client_id, args.action == "enable")
                if not changed:
                    print(f"error: no client {args.client_id!r}", file=sys.stderr)
                    return 1
                print(f"client {args.client_id} {args.action}d")
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m services.intake {api|worker|migrate|clients ...}`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "clients":
        raise SystemExit(_clients_command(args[1:]))
    if args and args[0] in ("-h", "--help"):
        print(
            "python -m services.intake clients {add,list,disable,enable} ...: manage the API clients"
        )
    service_main(
        args,
        name="intake",
        settings_factory=IntakeSettings,
        migrations=MIGRATIONS,
        metadata=metadata,
        app_path="services.intake.bootstrap:create_app",
        workers=workers,
    )
