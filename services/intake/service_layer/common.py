"""What every intake handler shares: its transaction context, dialect-aware upserts, the audit
trail and request idempotency. Handlers only execute statements; the boundary commits."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from services.intake.adapters.orm import audit_log, idempotency_records
from services.intake.domain.errors import ModifiedRequest
from shared.events.contracts import Contract
from shared.observability import correlation_id
from shared.outbox import Outbox


class Executor(Protocol):
    """An AsyncConnection or an AsyncSession: handlers only execute statements on it."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...


@dataclass
class Context:
    db: Executor
    outbox: Outbox
    actor: str  # the client id acting
    now: datetime
    postgres: bool
    events: list[Contract] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    traceparent: str | None = None  # None: the current trace context

    def insert(self, table: Table):
        return (postgresql.insert if self.postgres else sqlite.insert)(table)

    def for_update(self, query):
        return query.with_for_update() if self.postgres else query

    def emit(self, *events: Contract) -> None:
        self.events.extend(events)

    def audit(self, action: str, entity_type: str, entity_id: str, changes: dict[str, Any]) -> None:
        """Field names and masked values only: the audit trail never holds raw personal data."""
        self.audits.append({
            "at": self.now, "client_id": self.actor, "action": action, "entity_type": entity_type,
            "entity_id": entity_id, "changes": changes, "correlation_id": correlation_id.get(),
        })

    async def flush(self) -> None:
        """Write the collected audit rows and events (outbox) in the caller's transaction."""
        if self.audits:
            await self.db.execute(audit_log.insert(), self.audits)
            self.audits = []
        if self.events:
            await self.outbox.add(self.db, self.events, traceparent=self.traceparent)  # type: ignore[arg-type]
            self.events = []


def request_hash(document: Any) -> str:
    """SHA-256 of the canonical JSON of a parsed request (keys sorted)."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Replay(Exception):
    """The same request was already answered: send the stored answer again."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__("replay")
        self.status_code = status_code
        self.body = body


async def remember_response(ctx: Context, scope: str, key: str, digest: str, status_code: int, body: bytes) -> None:
    """Store the answer under (scope, key); a concurrent or earlier one with the same key wins:
    same request hash -> Replay, different -> ModifiedRequest (409)."""
    statement = (
        ctx.insert(idempotency_records)
        .values(scope=scope, key=key, request_hash=digest, status_code=status_code, response_body=body,
                client_id=ctx.actor, created_at=ctx.now)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(idempotency_records.c.key)
    )
    if (await ctx.db.execute(statement)).first() is None:
        await raise_replay_or_conflict(ctx, scope, key, digest)


async def raise_replay_or_conflict(ctx: Context, scope: str, key: str, digest: str) -> None:
    row = (
        await ctx.db.execute(
            select(idempotency_records.c.request_hash, idempotency_records.c.status_code,
                   idempotency_records.c.response_body)
            .where(idempotency_records.c.scope == scope, idempotency_records.c.key == key)
        )
    ).first()
    if row is None:
        return
    if row.request_hash == digest:
        raise Replay(row.status_code, bytes(row.response_body))
    raise ModifiedRequest(
        f"{key!r} was already used with a different request body; the first one stands",
        idempotency_key=key,
    )
