"""The PaymentFacts every payment event carries, taken from an installment row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.clock import as_date
from shared.events.contracts import PaymentFacts

FACT_FIELDS = tuple(PaymentFacts.model_fields)


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


def facts_json(row: Mapping[str, Any], **override: Any) -> dict[str, Any]:
    """`facts` with JSON-ready values, for the bulk events (`UnitOfWork.emit_bulk`)."""
    values = facts(row, **override)
    values["commune_list_date"] = values["commune_list_date"].isoformat()
    return values
