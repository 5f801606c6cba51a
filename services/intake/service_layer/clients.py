"""API clients (OAuth2 client credentials): registration, authentication, development seeds."""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.adapters.orm import audit_log, clients
from services.intake.domain.schemes import AGENCIES
from shared.auth import hash_secret, verify_secret
from shared.db import is_sqlite

OPERATOR = "operator"  # the audit trail's actor for command-line changes
SCOPES = (
    "claims:write", "claims:read", "decisions:write", "roll:write", "payment-methods:write",
    "beneficiaries:read", "pii:read", "audit:read",
)
AGENCY_SCOPES = ("claims:read", "decisions:write", "roll:write", "payment-methods:write", "beneficiaries:read")

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
    if not client_id or len(client_id) > 100 or not all(c.isalnum() or c in "-_." for c in client_id):
        raise BadClient("a client id has 1 to 100 letters, digits, '-', '_' or '.'")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadClient(f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if agency is not None and agency not in AGENCIES:
        raise BadClient(f"agency must be one of {', '.join(AGENCIES)}")


async def add_client(engine: AsyncEngine, client_id: str, secret: str | None, scopes: list[str],
                     agency: str | None = None, description: str | None = None, replace: bool = False) -> str:
    """Register (or with `replace`, re-key) a client; returns the secret, generated when not given."""
    check_client(client_id, scopes, agency)
    secret = secret or secrets.token_urlsafe(32)
    hashed = await asyncio.to_thread(hash_secret, secret)
    values = {"secret_hash": hashed, "scopes": " ".join(sorted(set(scopes))), "agency": agency,
              "description": description, "active": True}
    async with engine.begin() as conn:
        exists = (await conn.execute(select(clients.c.client_id).where(clients.c.client_id == client_id))).first()
        if exists and not replace:
            raise BadClient(f"client {client_id!r} exists (use --replace to change it)")
        if exists:
            await conn.execute(update(clients).where(clients.c.client_id == client_id).values(**values))
        else:
            await conn.execute(clients.insert().values(client_id=client_id, created_at=datetime.now(UTC), **values))
        await _audit(conn, "client.updated" if exists else "client.registered", client_id,
                     {"scopes": values["scopes"], "agency": agency, "secret": "changed"})
    return secret


async def _audit(conn, action: str, client_id: str, changes: dict, actor: str = OPERATOR) -> None:
    """Client changes are made by an operator on the command line (or seeded in development)."""
    await conn.execute(audit_log.insert().values(
        at=datetime.now(UTC), client_id=actor, action=action, entity_type="client", entity_id=client_id,
        changes=changes, correlation_id=None,
    ))


async def set_active(engine: AsyncEngine, client_id: str, active: bool) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(update(clients).where(clients.c.client_id == client_id).values(active=active))
        if result.rowcount:
            await _audit(conn, "client.enabled" if active else "client.disabled", client_id, {"active": active})
    return bool(result.rowcount)


async def list_clients(engine: AsyncEngine) -> list[Client]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(clients).order_by(clients.c.client_id))
        return [Client(r.client_id, frozenset(r.scopes.split()), r.agency, r.active, r.description) for r in rows]


async def authenticate(engine: AsyncEngine, client_id: str, secret: str) -> Client | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(clients).where(clients.c.client_id == client_id))).first()
    if row is None:
        # Spend the same time as a real check so ids cannot be probed by timing.
        await asyncio.to_thread(verify_secret, secret, _DUMMY_HASH)
        return None
    if not await asyncio.to_thread(verify_secret, secret, row.secret_hash) or not row.active:
        return None
    return Client(row.client_id, frozenset(row.scopes.split()), row.agency, row.active, row.description)


async def client_agency(engine: AsyncEngine, client_id: str) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(clients.c.agency).where(clients.c.client_id == client_id))).scalar()


async def seed_dev_clients(engine: AsyncEngine) -> list[str]:
    """Add the documented development clients that are missing; never call outside development."""
    async with engine.connect() as conn:
        present = set((await conn.execute(select(clients.c.client_id))).scalars())
    added = []
    for client_id, (scopes, agency, description) in DEV_CLIENTS.items():
        if client_id in present:
            continue
        hashed = await asyncio.to_thread(hash_secret, f"{client_id}-dev-secret")
        row = {"client_id": client_id, "secret_hash": hashed, "scopes": " ".join(sorted(scopes)), "agency": agency,
               "description": description, "active": True, "created_at": datetime.now(UTC)}
        async with engine.begin() as conn:
            insert = sqlite.insert if is_sqlite(engine) else postgresql.insert
            inserted = await conn.execute(
                insert(clients).values(**row).on_conflict_do_nothing(index_elements=["client_id"])
                .returning(clients.c.client_id)
            )
            if inserted.first() is not None:
                await _audit(conn, "client.registered", client_id, {"scopes": row["scopes"], "agency": agency,
                                                                    "development_seed": True}, actor="system")
                added.append(client_id)
    return added


_DUMMY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64
