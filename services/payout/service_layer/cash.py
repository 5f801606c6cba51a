"""Cash handed over or returned at the post office, recorded by its staff in the console.

The record is the post office's confirmation in another form: it goes through the same outcome
machinery as the signed webhook (`record_callback`, counterparty VNPOST), so a final state
never goes back and the same record twice changes nothing (its event id is derived from the
item and what is recorded). The delivery id names the person who recorded it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from services.payout.adapters.repository import cash as statements
from services.payout.domain import model
from services.payout.domain.model import Outcome
from services.payout.domain.outcomes import OutcomePolicy
from services.payout.service_layer.outcomes import record_callback
from shared.uow import UnitOfWork

# What the post office gives as the reason of a return (its reason table: return_reasons.csv).
RETURN_REASONS = ("NOT_FOUND", "REFUSED", "DECEASED")
Kind = Literal["handover", "return"]


class CashItemNotFound(Exception):
    """No cash item of a batch handed to the post office has this end-to-end id."""


class NotYourCommune(Exception):
    """The item is paid in a commune the person does not serve."""


@dataclass(frozen=True, slots=True)
class CashRecorded:
    end_to_end_id: str
    state: str  # the installment's state after the record
    replayed: bool  # the same record was made before: nothing changed
    conflict: bool  # the item was already final otherwise: nothing changed
    item: dict[str, Any]


def event_id(end_to_end_id: str, kind: Kind) -> str:
    return f"console:{kind}:{end_to_end_id}"


async def record_cash(
    uow: UnitOfWork,
    end_to_end_id: str,
    kind: Kind,
    *,
    recorded_by: str,
    communes: frozenset[str] | None,
    policy: OutcomePolicy,
    paid_on: date | None = None,
    staff_id: str | None = None,
    reason: str | None = None,
) -> CashRecorded:
    """Record a handover (paid on a date by a staff member) or a return (with the post office's
    reason) of one cash item. `communes`: the person's, when they act only for those."""
    item = await statements.cash_item(uow, end_to_end_id)
    if item is None:
        raise CashItemNotFound(end_to_end_id)
    if communes is not None and item["commune_code"] not in communes:
        raise NotYourCommune(end_to_end_id)
    outcome = Outcome(
        end_to_end_id=end_to_end_id,
        status="PAID_CASH" if kind == "handover" else "RETURNED",
        amount=int(item["amount"]),
        reason_code=None if kind == "handover" else reason,
        bank_reference=None,
        occurred_at=uow.now,
        paid_on=paid_on if kind == "handover" else None,
        staff_id=staff_id if kind == "handover" else None,
        event_id=event_id(end_to_end_id, kind),
    )
    applied = await record_callback(
        uow, model.VNPOST, f"console:{recorded_by}"[:100], [outcome], policy
    )
    after = await statements.cash_item(uow, end_to_end_id)
    assert after is not None
    wanted = model.PAID_CASH if kind == "handover" else model.RETURNED
    return CashRecorded(
        end_to_end_id=end_to_end_id,
        state=after["state"],
        replayed=applied.replayed > 0,
        conflict=after["state"] != wanted,
        item=after,
    )
