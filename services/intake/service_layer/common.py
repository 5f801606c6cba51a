"""What every intake handler shares: the unit of work with intake's audit trail, and request
idempotency. Handlers only execute on the unit of work; the boundary opens and commits it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.intake.adapters import repository
from services.intake.adapters.repository import Executor
from services.intake.domain.errors import ModifiedRequest
from shared.events.contracts import Contract
from shared.observability import correlation_id
from shared.uow import UnitOfWork


@dataclass
class IntakeUnitOfWork(UnitOfWork):
    """The kernel's unit of work, with the audit entries written at each flush."""

    audits: list[dict[str, Any]] = field(default_factory=list)

    def audit(self, action: str, entity_type: str, entity_id: str, changes: dict[str, Any]) -> None:
        """Field names and masked values only: the audit trail never holds raw personal data."""
        self.audits.append(
            {
                "at": self.now,
                "client_id": self.actor,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "changes": changes,
                "correlation_id": correlation_id.get(),
            }
        )

    def emit_for_request(
        self, events: Iterable[Contract], *, correlation: str | None, traceparent: str | None
    ) -> None:
        """Events of one request among several sharing this transaction (a batch of filings): they
        keep that request's correlation id and trace, and go out in the same one outbox write."""
        self.bulk_rows.extend(
            self.outbox.rows(events, correlation=correlation, traceparent=traceparent)
        )

    async def flush(self) -> None:
        if self.audits:
            await repository.write_audit(self.db, self.audits)
            self.audits = []
        await super().flush()


def request_hash(document: Any) -> str:
    """SHA-256 of the canonical JSON of a parsed request (keys sorted)."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Replay(Exception):
    """The same request was already answered: send the stored answer again."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__("replay")
        self.status_code = status_code
        self.body = body


async def remember_response(
    uow: UnitOfWork, scope: str, key: str, digest: str, status_code: int, body: bytes
) -> None:
    """Store the answer under (scope, key); a concurrent or earlier one with the same key wins:
    same request hash -> Replay, different -> ModifiedRequest (409)."""
    if not await repository.remember_response(uow, scope, key, digest, status_code, body):
        await raise_replay_or_conflict(uow, scope, key, digest)


async def raise_replay_or_conflict(db: Executor, scope: str, key: str, digest: str) -> None:
    """Replay for the same request, ModifiedRequest for another; nothing when none is stored."""
    row = await repository.remembered_response(db, scope, key)
    if row is None:
        return
    if row.request_hash == digest:
        raise Replay(row.status_code, bytes(row.response_body))
    raise ModifiedRequest(
        f"{key!r} was already used with a different request body; the first one stands",
        idempotency_key=key,
    )
