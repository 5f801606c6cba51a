"""Read queries of the intake API (writes live in the service layer's handlers)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.adapters.orm import (
    audit_log,
    beneficiaries,
    claims,
    entitlements,
    payment_method_history,
    payment_methods,
    upload_rows,
    uploads,
)


async def claim_with_national_id(conn: AsyncConnection, claim_id: str) -> Any:
    return (await conn.execute(
        select(claims, beneficiaries.c.national_id)
        .join(beneficiaries, beneficiaries.c.id == claims.c.beneficiary_id)
        .where(claims.c.id == claim_id)
    )).first()


async def list_claims(conn: AsyncConnection, *, limit: int, after: tuple[datetime, str] | None,
                      status: str | None, scheme: str | None, agency: str | None, commune_code: str | None,
                      portal_dossier_id: str | None, beneficiary_id: str | None,
                      received_from: datetime | None, received_to: datetime | None,
                      client_id: str | None = None) -> list[Any]:
    query = select(claims, beneficiaries.c.national_id).join(beneficiaries, beneficiaries.c.id == claims.c.beneficiary_id)
    filters = [
        (status, claims.c.status), (scheme, claims.c.scheme), (agency, claims.c.agency),
        (commune_code, claims.c.commune_code), (portal_dossier_id, claims.c.portal_dossier_id),
        (beneficiary_id, claims.c.beneficiary_id), (client_id, claims.c.client_id),
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
        query = query.where(or_(claims.c.received_at > at, and_(claims.c.received_at == at, claims.c.id > last_id)))
    query = query.order_by(claims.c.received_at, claims.c.id).limit(limit + 1)
    return list(await conn.execute(query))


async def entitlement(conn: AsyncConnection, entitlement_id: str) -> Any:
    return (await conn.execute(select(entitlements).where(entitlements.c.id == entitlement_id))).first()


async def beneficiary(conn: AsyncConnection, beneficiary_id: str) -> Any:
    return (await conn.execute(select(beneficiaries).where(beneficiaries.c.id == beneficiary_id))).first()


async def beneficiary_by_national_id(conn: AsyncConnection, national_id: str) -> Any:
    return (await conn.execute(select(beneficiaries).where(beneficiaries.c.national_id == national_id))).first()


async def entitlements_of(conn: AsyncConnection, beneficiary_id: str) -> list[Any]:
    return list(await conn.execute(
        select(entitlements).where(entitlements.c.beneficiary_id == beneficiary_id).order_by(entitlements.c.granted_at)
    ))


async def methods_of(conn: AsyncConnection, beneficiary_id: str) -> list[Any]:
    return list(await conn.execute(
        select(payment_methods).where(payment_methods.c.beneficiary_id == beneficiary_id)
        .order_by(payment_methods.c.created_at.desc(), payment_methods.c.id)
    ))


async def method_history_of(conn: AsyncConnection, beneficiary_id: str) -> list[Any]:
    return list(await conn.execute(
        select(payment_method_history).where(payment_method_history.c.beneficiary_id == beneficiary_id)
        .order_by(payment_method_history.c.id)
    ))


async def upload(conn: AsyncConnection, upload_id: str, kind: str) -> Any:
    return (await conn.execute(select(uploads).where(uploads.c.id == upload_id, uploads.c.kind == kind))).first()


async def upload_rows_of(conn: AsyncConnection, upload_id: str, outcome: str | None = None) -> list[Any]:
    query = select(upload_rows).where(upload_rows.c.upload_id == upload_id)
    if outcome is not None:
        query = query.where(upload_rows.c.outcome == outcome)
    return list(await conn.execute(query.order_by(upload_rows.c.seq)))


async def audit_entries(conn: AsyncConnection, *, limit: int, after_id: int | None, entity_type: str | None,
                        entity_id: str | None, client_id: str | None, action: str | None,
                        since: date | None = None) -> list[Any]:
    query = select(audit_log)
    for value, column in ((entity_type, audit_log.c.entity_type), (entity_id, audit_log.c.entity_id),
                          (client_id, audit_log.c.client_id), (action, audit_log.c.action)):
        if value is not None:
            query = query.where(column == value)
    if after_id is not None:
        query = query.where(audit_log.c.id > after_id)
    return list(await conn.execute(query.order_by(audit_log.c.id).limit(limit + 1)))
