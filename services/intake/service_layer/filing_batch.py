"""Group commit for claim filings on PostgreSQL.

Under load, many filings wait at once. A writer task takes all that are waiting (up to
`max_batch`) and writes them in ONE transaction: a multi-row beneficiary upsert, then one
statement for the idempotency records, claims and audit entries, then the outbox rows and one
NOTIFY. Each filing keeps its own outcome: a dossier id already used is answered by replay or 409
after the commit, an identity that does not match the registered person is a 422, and nothing of
those filings is written. When one transaction is in flight the next batch gathers, so an idle
service writes a filing at once (a batch of one) and a busy one amortises the round trips and the
commit over many. If a batch fails as a whole, its filings are written one per transaction.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.domain.errors import DomainError
from services.intake.service_layer import claims as filing_rules
from services.intake.service_layer.claims import (
    FILING_SCOPE,
    Filing,
    check_same_person,
    filing_events,
)
from services.intake.service_layer.common import Context, Replay, raise_replay_or_conflict
from services.intake.service_layer.payment_methods import document_of_spec
from shared.events.contracts import CONTRACT_BY_MODEL, Contract
from shared.events.envelope import CloudEvent
from shared.observability import correlation_id
from shared.outbox import Outbox, lane_for, notify_channel

log = logging.getLogger(__name__)

_UPSERT_PEOPLE = text("""
INSERT INTO beneficiaries (id, national_id, full_name, date_of_birth, si_number, commune_code,
                           commune_list_date, registered_via, registered_at)
SELECT i.id, i.national_id, i.full_name, i.date_of_birth, i.si_number, i.commune_code, i.commune_list_date,
       'PORTAL', CAST(:now AS timestamptz)
FROM unnest(CAST(:id AS text[]), CAST(:national_id AS text[]), CAST(:full_name AS text[]),
            CAST(:date_of_birth AS date[]), CAST(:si_number AS text[]), CAST(:commune_code AS text[]),
            CAST(:commune_list_date AS date[]))
     AS i(id, national_id, full_name, date_of_birth, si_number, commune_code, commune_list_date)
ORDER BY i.national_id
ON CONFLICT (national_id) DO UPDATE SET national_id = EXCLUDED.national_id
RETURNING id, national_id, full_name, date_of_birth
""")

_WRITE_CLAIMS = text("""
WITH i AS (
    SELECT * FROM unnest(
        CAST(:dossier AS text[]), CAST(:request_hash AS text[]), CAST(:body AS text[]), CAST(:client_id AS text[]),
        CAST(:claim_id AS text[]), CAST(:beneficiary_id AS text[]), CAST(:scheme AS text[]), CAST(:agency AS text[]),
        CAST(:full_name AS text[]), CAST(:date_of_birth AS date[]), CAST(:si_number AS text[]),
        CAST(:commune_code AS text[]), CAST(:commune_list_date AS date[]), CAST(:requested_method AS text[]),
        CAST(:payment AS text[]), CAST(:received_at AS timestamptz[]), CAST(:is_new AS boolean[]),
        CAST(:beneficiary_audit AS text[]), CAST(:claim_audit AS text[]), CAST(:correlation_id AS text[])
    ) AS i(dossier, request_hash, body, client_id, claim_id, beneficiary_id, scheme, agency, full_name,
           date_of_birth, si_number, commune_code, commune_list_date, requested_method, payment, received_at,
           is_new, beneficiary_audit, claim_audit, correlation_id)
), idem AS (
    INSERT INTO idempotency_records (scope, key, request_hash, status_code, response_body, client_id, created_at)
    SELECT :scope, i.dossier, i.request_hash, 201, convert_to(i.body, 'UTF8'), i.client_id, i.received_at
    FROM i ORDER BY i.dossier
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING key
), fresh AS (
    SELECT i.* FROM i JOIN idem ON idem.key = i.dossier
), claim AS (
    INSERT INTO claims (id, portal_dossier_id, beneficiary_id, scheme, agency, status, full_name, date_of_birth,
                        si_number, commune_code, commune_list_date, requested_method, payment, client_id,
                        received_at)
    SELECT claim_id, dossier, beneficiary_id, scheme, agency, 'RECEIVED', full_name, date_of_birth, si_number,
           commune_code, commune_list_date, requested_method, CAST(payment AS json), client_id, received_at
    FROM fresh
    RETURNING id
), audit AS (
    INSERT INTO audit_log (at, client_id, action, entity_type, entity_id, changes, correlation_id)
    SELECT received_at, client_id, 'beneficiary.registered', 'beneficiary', beneficiary_id,
           CAST(beneficiary_audit AS json), correlation_id
    FROM fresh WHERE is_new
    UNION ALL
    SELECT received_at, client_id, 'claim.filed', 'claim', claim_id, CAST(claim_audit AS json), correlation_id
    FROM fresh
    RETURNING id
)
SELECT key FROM idem
""")

_FORGET_PEOPLE = text("DELETE FROM beneficiaries WHERE id = ANY(CAST(:ids AS text[]))")


@dataclass
class _Waiting:
    filing: Filing
    future: asyncio.Future[bytes]


class FilingBatcher:
    def __init__(self, engine: AsyncEngine, outbox: Outbox, max_batch: int = 256) -> None:
        self.engine = engine
        self.outbox = outbox
        self.max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.filings = 0

    async def submit(self, filing: Filing) -> bytes:
        """Write the filing (with others); its 201 answer, or raises Replay / ModifiedRequest / Invalid."""
        if self._closed:
            raise RuntimeError("the filing writer is closed")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(filing, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return await asyncio.shield(future)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            try:
                await self._write(batch)
            except Exception as exc:
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)

    def _take(self) -> list[_Waiting]:
        """Up to max_batch filings, at most one per national id and per dossier id (the rest wait)."""
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        people: set[str] = set()
        dossiers: set[str] = set()
        for waiting in self._waiting:
            cmd = waiting.filing.cmd
            if (len(batch) >= self.max_batch or cmd.national_id in people
                    or cmd.portal_dossier_id in dossiers):
                rest.append(waiting)
                continue
            people.add(cmd.national_id)
            dossiers.add(cmd.portal_dossier_id)
            batch.append(waiting)
        self._waiting = rest
        return batch

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = await self._write_batch(batch)
        except Exception as exc:
            log.warning("filing batch failed, writing one by one", extra={"fields": {
                "filings": len(batch), "error": type(exc).__name__}})
            await asyncio.gather(*(self._write_one(w) for w in batch))
            return
        self.batches += 1
        replays = [w for w, outcome in zip(batch, outcomes) if outcome == "REPLAY"]
        for waiting, outcome in zip(batch, outcomes):
            if isinstance(outcome, bytes):
                self.filings += 1
                waiting.future.set_result(outcome)
            elif isinstance(outcome, Exception):
                waiting.future.set_exception(outcome)
        if replays:
            await asyncio.gather(*(self._replay(w) for w in replays))

    async def _write_one(self, waiting: _Waiting) -> None:
        filing = waiting.filing
        token = correlation_id.set(filing.correlation_id)
        try:
            async with self.engine.begin() as conn:
                ctx = Context(conn, self.outbox, filing.actor, filing.now, True, traceparent=filing.traceparent)
                answer = await filing_rules.write_prepared_filing(ctx, filing)
            waiting.future.set_result(answer)
        except Exception as exc:
            waiting.future.set_exception(exc)
        finally:
            correlation_id.reset(token)

    async def _replay(self, waiting: _Waiting) -> None:
        cmd = waiting.filing.cmd
        try:
            async with self.engine.connect() as conn:
                ctx = Context(conn, self.outbox, waiting.filing.actor, waiting.filing.now, True)
                await raise_replay_or_conflict(ctx, FILING_SCOPE, cmd.portal_dossier_id, cmd.request_hash)
            # Not found: the earlier filing rolled back meanwhile; write this one on its own.
            await self._write_one(waiting)
        except (Replay, DomainError) as exc:
            waiting.future.set_exception(exc)
        except Exception as exc:
            waiting.future.set_exception(exc)

    async def _write_batch(self, batch: list[_Waiting]) -> list[bytes | Exception | str]:
        filings = [w.filing for w in batch]
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            people = {
                row.national_id: row
                for row in await conn.execute(_UPSERT_PEOPLE, {
                    "now": now,
                    "id": [f.beneficiary_id for f in filings],
                    "national_id": [f.cmd.national_id for f in filings],
                    "full_name": [f.name for f in filings],
                    "date_of_birth": [f.cmd.date_of_birth for f in filings],
                    "si_number": [f.cmd.si_number for f in filings],
                    "commune_code": [f.cmd.commune_code for f in filings],
                    "commune_list_date": [f.cmd.commune_list_date for f in filings],
                })
            }
            outcomes: list[bytes | Exception | str] = []
            writable: list[tuple[int, Filing, str]] = []
            for index, filing in enumerate(filings):
                person = people[filing.cmd.national_id]
                if person.id != filing.beneficiary_id:
                    try:
                        check_same_person(person.full_name, person.date_of_birth, filing.name,
                                          filing.cmd.date_of_birth, "/applicant")
                    except DomainError as exc:
                        outcomes.append(exc)
                        continue
                outcomes.append("PENDING")
                writable.append((index, filing, person.id))
            fresh: set[str] = set()
            if writable:
                fresh = set((await conn.execute(_WRITE_CLAIMS, _claim_columns(writable))).scalars())
            events: list[tuple[Contract, str | None]] = []
            orphans: list[str] = []
            for index, filing, beneficiary_id in writable:
                if filing.cmd.portal_dossier_id in fresh:
                    outcomes[index] = filing.answer(beneficiary_id)
                    events.extend((e, filing.correlation_id, filing.traceparent)
                                  for e in filing_events(filing, beneficiary_id))
                else:
                    outcomes[index] = "REPLAY"
                    if beneficiary_id == filing.beneficiary_id:
                        orphans.append(beneficiary_id)  # registered for a filing that is not written
            if orphans:
                await conn.execute(_FORGET_PEOPLE, {"ids": orphans})
            if events:
                await conn.execute(insert(self.outbox.table), _outbox_rows(self.outbox, events, now))
                await conn.execute(text("SELECT pg_notify(:channel, '')"),
                                   {"channel": notify_channel(self.outbox.service)})
        return outcomes


def _claim_columns(writable: list[tuple[int, Filing, str]]) -> dict[str, Any]:
    def column(get) -> list[Any]:
        return [get(f, b) for _, f, b in writable]

    return {
        "scope": FILING_SCOPE,
        "dossier": column(lambda f, b: f.cmd.portal_dossier_id),
        "request_hash": column(lambda f, b: f.cmd.request_hash),
        "body": column(lambda f, b: f.answer(b).decode()),
        "client_id": column(lambda f, b: f.actor),
        "claim_id": column(lambda f, b: f.claim_id),
        "beneficiary_id": column(lambda f, b: b),
        "scheme": column(lambda f, b: f.cmd.scheme),
        "agency": column(lambda f, b: f.agency),
        "full_name": column(lambda f, b: f.name),
        "date_of_birth": column(lambda f, b: f.cmd.date_of_birth),
        "si_number": column(lambda f, b: f.cmd.si_number),
        "commune_code": column(lambda f, b: f.cmd.commune_code),
        "commune_list_date": column(lambda f, b: f.cmd.commune_list_date),
        "requested_method": column(lambda f, b: f.payment.kind),
        "payment": column(lambda f, b: orjson.dumps(document_of_spec(f.payment)).decode()),
        "received_at": column(lambda f, b: f.now),
        "is_new": column(lambda f, b: b == f.beneficiary_id),
        "beneficiary_audit": column(lambda f, b: orjson.dumps(f.beneficiary_audit).decode()),
        "claim_audit": column(lambda f, b: f.claim_audit_json(b)),
        "correlation_id": column(lambda f, b: f.correlation_id),
    }


def _outbox_rows(outbox: Outbox, events: list[tuple[Contract, str | None, str | None]],
                 now: datetime) -> list[dict[str, Any]]:
    """The rows `Outbox.add` writes, each with its own request's correlation id and trace."""
    rows = []
    for payload, correlation, traceparent in events:
        contract = CONTRACT_BY_MODEL[type(payload)]
        key = str(getattr(payload, contract.key_field))
        event = CloudEvent(type=contract.type, source=outbox.source, subject=key,
                           data=payload.model_dump(mode="json"), time=now)
        rows.append({
            "lane": lane_for(key), "event_id": event.id, "event_type": event.type, "topic": contract.topic,
            "key": key, "payload": event.to_json(), "correlation_id": correlation, "traceparent": traceparent,
            "created_at": now,
        })
    return rows
