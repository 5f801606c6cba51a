"""API clients (OAuth2 client credentials): registration, authentication, development seeds."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from services.intake.adapters import repository
from services.intake.adapters.repository import Executor
from services.intake.domain.schemes import AGENCIES
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.auth import hash_secret, verify_secret
from shared.authority import AGENCY_SCOPES, INTAKE_SCOPES

OPERATOR = "operator"  # the audit trail's actor for command-line changes
SEEDER = "system"  # the audit trail's actor for the development seeds
SCOPES = INTAKE_SCOPES  # every scope intake grants; the table is in shared/authority.py

# Development only (settings.environment == "development"): `<id>-dev-secret`.
DEV_CLIENTS: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "portal": (("claims:write", "claims:read"), None, "National Public Service Portal"),
    "bhxh": (AGENCY_SCOPES, "BHXH", "Provincial social-insurance agency"),
    "dolisa": (AGENCY_SCOPES, "DOLISA", "Department of Labour, Invalids and Social Affairs"),
    "esc": (AGENCY_SCOPES, "ESC", "Employment Service Centre"),
    "admin": (SCOPES, None, "Administrator: every scope, unmasked data"),
}


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    scopes: frozenset[str]
    agency: str | None
    active: bool
    description: str | None = None


class BadClient(ValueError):
    pass


def check_client(client_id: str, scopes: list[str], agency: str | None) -> None:
    if (
        not client_id
        or len(client_id) > 100
        or not all(c.isalnum() or c in "-_." for c in client_id)
    ):
        raise BadClient("a client id has 1 to 100 letters, digits, '-', '_' or '.'")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadClient(f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if agency is not None and agency not in AGENCIES:
        raise BadClient(f"agency must be one of {', '.join(AGENCIES)}")


async def add_client(
    uow: IntakeUnitOfWork,
    client_id: str,
    secret: str | None,
    scopes: list[str],
    agency: str | None = None,
    description: str | None = None,
    replace: bool = False,
) -> str:
    """Register (or with `replace`, re-key) a client; returns the secret, generated when not given."""
    check_client(client_id, scopes, agency)
    secret = secret or secrets.token_urlsafe(32)
    hashed = await asyncio.to_thread(hash_secret, secret)
    values = {
        "secret_hash": hashed,
        "scopes": " ".join(sorted(set(scopes))),
        "agency": agency,
        "description": description,
        "active": True,
    }
    exists = await repository.client(uow, client_id) is not None
    if exists and not replace:
        raise BadClient(f"client {client_id!r} exists (use --replace to change it)")
    if exists:
        await repository.update_client(uow, client_id, values)
    else:
        await repository.insert_client(
            uow, {"client_id": client_id, "created_at": uow.now, **values}
        )
    uow.audit(
        "client.updated" if exists else "client.registered",
        "client",
        client_id,
        {"scopes": values["scopes"], "agency": agency, "secret": "changed"},
    )
    return secret


async def set_active(uow: IntakeUnitOfWork, client_id: str, active: bool) -> bool:
    """Enable or disable a client; False when there is no such client."""
    if not await repository.update_client(uow, client_id, {"active": active}):
        return False
    uow.audit(
        "client.enabled" if active else "client.disabled", "client", client_id, {"active": active}
    )
    return True


async def list_clients(db: Executor) -> list[Client]:
    return [
        Client(r.client_id, frozenset(r.scopes.split()), r.agency, r.active, r.description)
        for r in await repository.all_clients(db)
    ]


async def authenticate(stored: Any, secret: str) -> Client | None:
    """The client if `stored` (its row, or None when unknown) is active and `secret` is its own."""
    if stored is None:
        # Spend the same time as a real check so ids cannot be probed by timing.
        await asyncio.to_thread(verify_secret, secret, _DUMMY_HASH)
        return None
    if not await asyncio.to_thread(verify_secret, secret, stored.secret_hash) or not stored.active:
        return None
    return Client(
        stored.client_id,
        frozenset(stored.scopes.split()),
        stored.agency,
        stored.active,
        stored.description,
    )


async def seed_dev_clients(uow: IntakeUnitOfWork) -> list[str]:
    """Add the documented development clients that are missing; never call outside development."""
    present = await repository.client_ids(uow)
    added = []
    for client_id, (scopes, agency, description) in DEV_CLIENTS.items():
        if client_id in present:
            continue
        hashed = await asyncio.to_thread(hash_secret, f"{client_id}-dev-secret")
        row = {
            "client_id": client_id,
            "secret_hash": hashed,
            "scopes": " ".join(sorted(scopes)),
            "agency": agency,
            "description": description,
            "active": True,
            "created_at": uow.now,
        }
        if await repository.insert_client_if_absent(uow, row):
            uow.audit(
                "client.registered",
                "client",
                client_id,
                {"scopes": row["scopes"], "agency": agency, "development_seed": True},
            )
            added.append(client_id)
    return added


_DUMMY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64
