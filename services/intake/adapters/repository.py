"""Every statement intake runs, reads and writes. The service layer calls these with its unit of
work (or, for a read, any connection); it holds no SQL of its own. A function that needs the
dialect (an upsert, a row lock) takes the unit of work, which knows it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import String, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from services.intake.adapters.orm import (
    audit_log,
    beneficiaries,
    claims,
    clients,
    entitlements,
    idempotency_records,
    payment_method_history,
    payment_methods,
    upload_rows,
    uploads,
    users,
)
from services.intake.domain.entitlements import ACTIVE, STOPPED
from shared.uow import UnitOfWork


class Executor(Protocol):
    """A connection, a session or a unit of work: reads only execute statements on it."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...


# --- the audit trail and request idempotency -------------------------------------------------


async def write_audit(db: Executor, entries: Sequence[dict[str, Any]]) -> None:
    if entries:
        await db.execute(audit_log.insert(), list(entries))


async def remember_response(
    uow: UnitOfWork, scope: str, key: str, digest: str, status_code: int, body: bytes
) -> bool:
    """Store an answer under (scope, key); False when one is already stored there."""
    statement = (
        uow.insert(idempotency_records)
        .values(
            scope=scope,
            key=key,
            request_hash=digest,
            status_code=status_code,
            response_body=body,
            client_id=uow.actor,
            created_at=uow.now,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(idempotency_records.c.key)
    )
    return (await uow.execute(statement)).first() is not None


async def remembered_response(db: Executor, scope: str, key: str) -> Any:
    """The stored answer under (scope, key): request_hash, status_code, response_body; or None."""
    return (
        await db.execute(
            select(
                idempotency_records.c.request_hash,
                idempotency_records.c.status_code,
                idempotency_records.c.response_body,
            ).where(idempotency_records.c.scope == scope, idempotency_records.c.key == key)
        )
    ).first()


# --- clients ---------------------------------------------------------------------------------


async def client(db: Executor, client_id: str) -> Any:
    return (await db.execute(select(clients).where(clients.c.client_id == client_id))).first()


async def all_clients(db: Executor) -> list[Any]:
    return list(await db.execute(select(clients).order_by(clients.c.client_id)))


async def client_ids(db: Executor) -> set[str]:
    return set((await db.execute(select(clients.c.client_id))).scalars())


async def client_agency(db: Executor, client_id: str) -> str | None:
    agency: str | None = (
        await db.execute(select(clients.c.agency).where(clients.c.client_id == client_id))
    ).scalar()
    return agency


async def insert_client(db: Executor, values: Mapping[str, Any]) -> None:
    await db.execute(clients.insert().values(**values))


async def insert_client_if_absent(uow: UnitOfWork, values: Mapping[str, Any]) -> bool:
    inserted = await uow.execute(
        uow.insert(clients)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["client_id"])
        .returning(clients.c.client_id)
    )
    return inserted.first() is not None


async def update_client(db: Executor, client_id: str, values: Mapping[str, Any]) -> int:
    """The number of clients changed (0: no such client)."""
    result = await db.execute(
        update(clients).where(clients.c.client_id == client_id).values(**values)
    )
    return int(result.rowcount or 0)


# --- users (people who sign in) ----------------------------------------------------------------


async def user(db: Executor, username: str) -> Any:
    return (await db.execute(select(users).where(users.c.username == username))).first()


async def all_users(db: Executor) -> list[Any]:
    return list(await db.execute(select(users).order_by(users.c.username)))


async def insert_user_if_absent(uow: UnitOfWork, values: Mapping[str, Any]) -> bool:
    inserted = await uow.execute(
        uow.insert(users)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["username"])
        .returning(users.c.username)
    )
    return inserted.first() is not None


async def update_user(db: Executor, username: str, values: Mapping[str, Any]) -> int:
    """The number of users changed (0: no such user)."""
    result = await db.execute(update(users).where(users.c.username == username).values(**values))
    return int(result.rowcount or 0)


async def record_sign_in_failure(
    db: Executor, username: str, failures: int, lock_until: datetime, now: datetime
) -> None:
    """One more wrong password, counted in the database (concurrent attempts all count); the
    `failures`-th in a row locks the account until `lock_until`."""
    await db.execute(
        update(users)
        .where(users.c.username == username)
        .values(failed_attempts=users.c.failed_attempts + 1, updated_at=now)
    )
    await db.execute(
        update(users)
        .where(users.c.username == username, users.c.failed_attempts >= failures)
        .values(locked_until=lock_until, failed_attempts=0)
    )


async def record_sign_in_success(db: Executor, username: str, now: datetime) -> None:
    await db.execute(
        update(users)
        .where(users.c.username == username)
        .values(failed_attempts=0, locked_until=None, updated_at=now)
    )


# --- beneficiaries -----------------------------------------------------------------------------


async def beneficiary(db: Executor, beneficiary_id: str) -> Any:
    return (
        await db.execute(select(beneficiaries).where(beneficiaries.c.id == beneficiary_id))
    ).first()


async def beneficiary_by_national_id(db: Executor, national_id: str) -> Any:
    return (
        await db.execute(select(beneficiaries).where(beneficiaries.c.national_id == national_id))
    ).first()


async def beneficiaries_by_national_id(db: Executor, national_ids: Iterable[str]) -> dict[str, Any]:
    rows = await db.execute(
        select(beneficiaries).where(beneficiaries.c.national_id.in_(set(national_ids)))
    )
    return {row.national_id: row for row in rows}


async def insert_beneficiaries(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await db.execute(beneficiaries.insert(), list(rows))


async def lock_beneficiaries(uow: UnitOfWork, beneficiary_ids: Sequence[str]) -> None:
    """Take these people's rows in id order (PostgreSQL), so grants to one person take turns.
    NO KEY UPDATE: inserts that merely reference the person do not wait."""
    if uow.postgres:
        await uow.execute(
            select(beneficiaries.c.id)
            .where(beneficiaries.c.id.in_(sorted(beneficiary_ids)))
            .order_by(beneficiaries.c.id)
            .with_for_update(key_share=True)
        )


# --- claims ----------------------------------------------------------------------------------


async def claim_with_national_id(db: Executor, claim_id: str) -> Any:
    return (
        await db.execute(
            select(claims, beneficiaries.c.national_id)
            .join(beneficiaries, beneficiaries.c.id == claims.c.beneficiary_id)
            .where(claims.c.id == claim_id)
        )
    ).first()


async def list_claims(
    db: Executor,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    status: str | None,
    scheme: str | None,
    agency: str | None,
    commune_code: str | None,
    portal_dossier_id: str | None,
    beneficiary_id: str | None,
    received_from: datetime | None,
    received_to: datetime | None,
    client_id: str | None = None,
) -> list[Any]:
    query = select(claims, beneficiaries.c.national_id).join(
        beneficiaries, beneficiaries.c.id == claims.c.beneficiary_id
    )
    filters = [
        (status, claims.c.status),
        (scheme, claims.c.scheme),
        (agency, claims.c.agency),
        (commune_code, claims.c.commune_code),
        (portal_dossier_id, claims.c.portal_dossier_id),
        (beneficiary_id, claims.c.beneficiary_id),
        (client_id, claims.c.client_id),
    ]
    for value, column in filters:
        if value is not None:
            query = query.where(column == value)
    if received_from is not None:
        query = query.where(claims.c.received_at >= received_from)
    if received_to is not None:
        query = query.where(claims.c.received_at < received_to)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(claims.c.received_at > at, and_(claims.c.received_at == at, claims.c.id > last_id))
        )
    query = query.order_by(claims.c.received_at, claims.c.id).limit(limit + 1)
    return list(await db.execute(query))


async def claim_for_update(uow: UnitOfWork, claim_id: str) -> Any:
    return (
        await uow.execute(uow.for_update(select(claims).where(claims.c.id == claim_id)))
    ).first()


async def record_decision(db: Executor, claim_id: str, values: Mapping[str, Any]) -> None:
    await db.execute(update(claims).where(claims.c.id == claim_id).values(**values))


# --- filing claims (one write for one filing or a batch) ---------------------------------------
#
# PostgreSQL: a multi-row beneficiary upsert, then ONE statement for the idempotency records, the
# claims and the audit entries (data-modifying CTEs over arrays), so a batch of filings costs a
# few round trips. SQLite (one writer, no batching) runs the same steps with plain statements.

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

FILED_PERSON_COLUMNS = (
    "id",
    "national_id",
    "full_name",
    "date_of_birth",
    "si_number",
    "commune_code",
    "commune_list_date",
)
FILED_CLAIM_COLUMNS = (
    "dossier",
    "request_hash",
    "body",
    "client_id",
    "claim_id",
    "beneficiary_id",
    "scheme",
    "agency",
    "full_name",
    "date_of_birth",
    "si_number",
    "commune_code",
    "commune_list_date",
    "requested_method",
    "payment",
    "received_at",
    "is_new",
    "beneficiary_audit",
    "claim_audit",
    "correlation_id",
)


async def upsert_filed_people(
    uow: UnitOfWork, people: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Register the people of filings (`FILED_PERSON_COLUMNS`, one per national id), or find them
    by national id: id, national_id, full_name, date_of_birth, by national id."""
    if uow.postgres:
        rows = await uow.execute(
            _UPSERT_PEOPLE,
            {
                "now": uow.now,
                **{column: [p[column] for p in people] for column in FILED_PERSON_COLUMNS},
            },
        )
    else:
        upsert = uow.insert(beneficiaries).values(
            [{**p, "registered_via": "PORTAL", "registered_at": uow.now} for p in people]
        )
        rows = await uow.execute(
            upsert.on_conflict_do_update(
                index_elements=["national_id"], set_={"national_id": upsert.excluded.national_id}
            ).returning(
                beneficiaries.c.id,
                beneficiaries.c.national_id,
                beneficiaries.c.full_name,
                beneficiaries.c.date_of_birth,
            )
        )
    return {row.national_id: row for row in rows}


async def write_filed_claims(
    uow: UnitOfWork, scope: str, filed: Sequence[Mapping[str, Any]]
) -> set[str]:
    """Each filing's idempotency record (its 201 answer under `scope`), claim and audit entries
    (`FILED_CLAIM_COLUMNS`, JSON as text); only those whose dossier id is new are written.
    Returns those dossier ids."""
    if not filed:
        return set()
    if uow.postgres:
        columns = {column: [f[column] for f in filed] for column in FILED_CLAIM_COLUMNS}
        return set((await uow.execute(_WRITE_CLAIMS, {"scope": scope, **columns})).scalars())
    fresh = [f for f in filed if await _remember_filing(uow, scope, f)]
    if fresh:
        await uow.execute(claims.insert(), [_claim_row(f) for f in fresh])
        await uow.execute(audit_log.insert(), [entry for f in fresh for entry in _filing_audit(f)])
    return {f["dossier"] for f in fresh}


async def _remember_filing(uow: UnitOfWork, scope: str, f: Mapping[str, Any]) -> bool:
    remembered = await uow.execute(
        uow.insert(idempotency_records)
        .values(
            scope=scope,
            key=f["dossier"],
            request_hash=f["request_hash"],
            status_code=201,
            response_body=f["body"].encode(),
            client_id=f["client_id"],
            created_at=f["received_at"],
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(idempotency_records.c.key)
    )
    return remembered.first() is not None


def _claim_row(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f["claim_id"],
        "portal_dossier_id": f["dossier"],
        "beneficiary_id": f["beneficiary_id"],
        "scheme": f["scheme"],
        "agency": f["agency"],
        "status": "RECEIVED",
        "full_name": f["full_name"],
        "date_of_birth": f["date_of_birth"],
        "si_number": f["si_number"],
        "commune_code": f["commune_code"],
        "commune_list_date": f["commune_list_date"],
        "requested_method": f["requested_method"],
        "payment": orjson.loads(f["payment"]),
        "client_id": f["client_id"],
        "received_at": f["received_at"],
    }


def _filing_audit(f: Mapping[str, Any]) -> list[dict[str, Any]]:
    def entry(action: str, entity_type: str, entity_id: str, changes: str) -> dict[str, Any]:
        return {
            "at": f["received_at"],
            "client_id": f["client_id"],
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "changes": orjson.loads(changes),
            "correlation_id": f["correlation_id"],
        }

    entries = (
        [
            entry(
                "beneficiary.registered", "beneficiary", f["beneficiary_id"], f["beneficiary_audit"]
            )
        ]
        if f["is_new"]
        else []
    )
    return [*entries, entry("claim.filed", "claim", f["claim_id"], f["claim_audit"])]


async def forget_people(db: Executor, beneficiary_ids: Sequence[str]) -> None:
    """Remove people registered for filings that were not written (their dossier id was used)."""
    if beneficiary_ids:
        await db.execute(delete(beneficiaries).where(beneficiaries.c.id.in_(beneficiary_ids)))


# --- entitlements ----------------------------------------------------------------------------


async def entitlement(db: Executor, entitlement_id: str) -> Any:
    return (
        await db.execute(select(entitlements).where(entitlements.c.id == entitlement_id))
    ).first()


async def entitlement_for_update(uow: UnitOfWork, entitlement_id: str) -> Any:
    return (
        await uow.execute(
            uow.for_update(select(entitlements).where(entitlements.c.id == entitlement_id))
        )
    ).first()


async def entitlements_of(db: Executor, beneficiary_id: str) -> list[Any]:
    return list(
        await db.execute(
            select(entitlements)
            .where(entitlements.c.beneficiary_id == beneficiary_id)
            .order_by(entitlements.c.granted_at)
        )
    )


async def held_entitlements(db: Executor, beneficiary_ids: Sequence[str]) -> list[Any]:
    """What the one-per-scheme rule needs to see of these people's entitlements."""
    return list(
        await db.execute(
            select(
                entitlements.c.id,
                entitlements.c.beneficiary_id,
                entitlements.c.scheme,
                entitlements.c.decision_number,
                entitlements.c.status,
                entitlements.c.schedule_kind,
                entitlements.c.start_period,
                entitlements.c.installments,
                entitlements.c.stop_effective_period,
            ).where(entitlements.c.beneficiary_id.in_(beneficiary_ids))
        )
    )


async def decision_number_taken(db: Executor, agency: str, decision_number: str) -> bool:
    return (
        await db.execute(
            select(entitlements.c.id).where(
                entitlements.c.agency == agency, entitlements.c.decision_number == decision_number
            )
        )
    ).first() is not None


async def entitlements_by_decision(uow: UnitOfWork, keys: set[tuple[str, str]]) -> list[Any]:
    """The entitlements with these (agency, decision number) keys."""
    if not uow.postgres:
        return [
            row
            for row in await uow.execute(
                select(entitlements).where(
                    entitlements.c.agency.in_({a for a, _ in keys}),
                    entitlements.c.decision_number.in_({n for _, n in keys}),
                )
            )
            if (row.agency, row.decision_number) in keys
        ]
    # PostgreSQL: join the keys as two arrays. (A long IN list of parameters is searched linearly
    # for every row once the prepared statement goes generic.)
    wanted = (
        func.unnest(
            bindparam("agencies", type_=ARRAY(String)), bindparam("numbers", type_=ARRAY(String))
        )
        .table_valued("agency", "decision_number")
        .render_derived(name="wanted")
    )
    query = select(entitlements).join(
        wanted,
        and_(
            entitlements.c.agency == wanted.c.agency,
            entitlements.c.decision_number == wanted.c.decision_number,
        ),
    )
    ordered = sorted(keys)
    return list(
        await uow.execute(
            query, {"agencies": [a for a, _ in ordered], "numbers": [n for _, n in ordered]}
        )
    )


async def insert_entitlements(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await db.execute(entitlements.insert(), list(rows))


async def stop_entitlement(db: Executor, entitlement_id: str, values: Mapping[str, Any]) -> None:
    await db.execute(
        update(entitlements).where(entitlements.c.id == entitlement_id).values(**values)
    )


async def paying_agencies(
    db: Executor, beneficiary_ids: Iterable[str], period: str
) -> dict[str, frozenset[str]]:
    """The agencies paying each of these beneficiaries in `period` (none: absent): an entitlement
    still paying is active, or stopped from a period after `period` (`ownership.is_open`)."""
    ids = list(set(beneficiary_ids))
    if not ids:
        return {}
    still_paying = or_(
        entitlements.c.status == ACTIVE,
        and_(entitlements.c.status == STOPPED, entitlements.c.stop_effective_period > period),
    )
    found: dict[str, set[str]] = {}
    rows = await db.execute(
        select(entitlements.c.beneficiary_id, entitlements.c.agency).where(
            entitlements.c.beneficiary_id.in_(ids), still_paying
        )
    )
    for row in rows:
        found.setdefault(row.beneficiary_id, set()).add(row.agency)
    return {k: frozenset(v) for k, v in found.items()}


# --- payment methods -------------------------------------------------------------------------


async def methods_of(db: Executor, beneficiary_id: str) -> list[Any]:
    return list(
        await db.execute(
            select(payment_methods)
            .where(payment_methods.c.beneficiary_id == beneficiary_id)
            .order_by(payment_methods.c.created_at.desc(), payment_methods.c.id)
        )
    )


async def method_history_of(db: Executor, beneficiary_id: str) -> list[Any]:
    return list(
        await db.execute(
            select(payment_method_history)
            .where(payment_method_history.c.beneficiary_id == beneficiary_id)
            .order_by(payment_method_history.c.id)
        )
    )


async def current_methods_for_update(
    uow: UnitOfWork, beneficiary_ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    query = uow.for_update(
        select(payment_methods).where(
            payment_methods.c.beneficiary_id.in_(beneficiary_ids), payment_methods.c.is_current
        )
    )
    return {row.beneficiary_id: row._mapping for row in await uow.execute(query)}


async def method_for_update(uow: UnitOfWork, beneficiary_id: str, method_id: str | None) -> Any:
    """The beneficiary's method `method_id`, or their current one when None."""
    query = select(payment_methods).where(payment_methods.c.beneficiary_id == beneficiary_id)
    if method_id is not None:
        query = query.where(payment_methods.c.id == method_id)
    else:
        query = query.where(payment_methods.c.is_current)
    return (await uow.execute(uow.for_update(query))).first()


async def supersede_methods(db: Executor, method_ids: Sequence[str], now: datetime) -> None:
    if method_ids:
        await db.execute(
            update(payment_methods)
            .where(payment_methods.c.id.in_(method_ids))
            .values(is_current=False, superseded_at=now)
        )


async def insert_methods(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await db.execute(payment_methods.insert(), list(rows))


async def set_method_status(db: Executor, method_id: str, values: Mapping[str, Any]) -> None:
    await db.execute(
        update(payment_methods).where(payment_methods.c.id == method_id).values(**values)
    )


async def insert_method_history(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await db.execute(payment_method_history.insert(), list(rows))


# --- uploads ---------------------------------------------------------------------------------


async def upload(db: Executor, upload_id: str, kind: str) -> Any:
    return (
        await db.execute(select(uploads).where(uploads.c.id == upload_id, uploads.c.kind == kind))
    ).first()


async def upload_rows_of(db: Executor, upload_id: str, outcome: str | None = None) -> list[Any]:
    query = select(upload_rows).where(upload_rows.c.upload_id == upload_id)
    if outcome is not None:
        query = query.where(upload_rows.c.outcome == outcome)
    return list(await db.execute(query.order_by(upload_rows.c.seq)))


async def insert_upload(db: Executor, values: Mapping[str, Any]) -> None:
    await db.execute(uploads.insert().values(**values))


async def insert_upload_rows(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await db.execute(upload_rows.insert(), list(rows))


async def set_upload_totals(
    db: Executor, upload_id: str, accepted: int, unchanged: int, rejected: int
) -> None:
    await db.execute(
        update(uploads)
        .where(uploads.c.id == upload_id)
        .values(accepted=accepted, unchanged=unchanged, rejected=rejected)
    )


# --- reading the audit trail -----------------------------------------------------------------


async def audit_entries(
    db: Executor,
    *,
    limit: int,
    after_id: int | None,
    entity_type: str | None,
    entity_id: str | None,
    client_id: str | None,
    action: str | None,
    since: date | None = None,
) -> list[Any]:
    query = select(audit_log)
    for value, column in (
        (entity_type, audit_log.c.entity_type),
        (entity_id, audit_log.c.entity_id),
        (client_id, audit_log.c.client_id),
        (action, audit_log.c.action),
    ):
        if value is not None:
            query = query.where(column == value)
    if after_id is not None:
        query = query.where(audit_log.c.id > after_id)
    return list(await db.execute(query.order_by(audit_log.c.id).limit(limit + 1)))
