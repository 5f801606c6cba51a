"""Helpers the handlers share: dialect differences, event facts, time."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.contracts import PaymentFacts

FACT_FIELDS = tuple(PaymentFacts.model_fields)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite_session(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def upsert(session: AsyncSession, table: Table):
    """`INSERT … ON CONFLICT` for the session's dialect."""
    return (sqlite.insert if is_sqlite_session(session) else postgresql.insert)(table)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def facts_json(row: Mapping[str, Any], **override: Any) -> dict[str, Any]:
    """`facts` with JSON-ready values, for the bulk outbox writer."""
    values = facts(row, **override)
    values["commune_list_date"] = values["commune_list_date"].isoformat()
    return values


def facts(row: Mapping[str, Any], **override: Any) -> dict[str, Any]:
    """The PaymentFacts dimensions of an installment row (channel and counterparty may be
    overridden: a failed bank attempt keeps the bank's even after a cash fallback)."""
    values = {
        "installment_id": str(row["id"]),
        "entitlement_id": row["entitlement_id"],
        "beneficiary_id": row["beneficiary_id"],
        "period": row["period"],
        "amount": int(row["amount"]),
        "scheme": row["scheme"],
        "agency": row["agency"],
        "channel": row["channel"],
        "counterparty": row["counterparty"],
        "commune_code": row["commune_code"],
        "commune_list_date": as_date(row["commune_list_date"]),
    }
    values.update(override)
    return values
