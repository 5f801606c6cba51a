"""Whose records these are, for the ownership rule of `shared.authority`: a beneficiary belongs
to the agencies of their open entitlements, an entitlement to its agency, a claim to its scheme's
agency and its filer, an upload to its client and that client's agency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.intake.adapters import repository
from services.intake.adapters.repository import Executor
from services.intake.domain import entitlements as entitlement_rules
from services.intake.domain.errors import Forbidden
from shared.auth import Principal
from shared.authority import REGISTRY_SCOPE, Owner, may_act_on


def is_open(row: Mapping[str, Any], period: str) -> bool:
    """Still paying: active, or stopped from a period after `period` (SQL twin:
    `repository.paying_agencies`)."""
    if row["status"] == entitlement_rules.ACTIVE:
        return True
    stop = row["stop_effective_period"]
    return row["status"] == entitlement_rules.STOPPED and stop is not None and stop > period


def beneficiary_owner(rights: Iterable[Mapping[str, Any]], period: str) -> Owner:
    return Owner(frozenset(r["agency"] for r in rights if is_open(r, period)))


def claim_owner(row: Any) -> Owner:
    return Owner(frozenset({row.agency}), row.client_id)


def entitlement_owner(row: Any) -> Owner:
    return Owner(frozenset({row.agency}))


async def upload_owner(db: Executor, row: Any) -> Owner:
    agency = await repository.client_agency(db, row.client_id)
    return Owner(frozenset({agency}) if agency else frozenset(), row.client_id)


def not_paid_by(agency: str) -> str:
    return f"this beneficiary is not paid by {agency}: only the paying agency may change the payment method"


def require_decider(principal: Principal) -> None:
    """Decisions and stops are an agency's (checked against the record by the handler) or a
    registry-wide client's; never a filer's, not even on its own claims."""
    if principal.agency is None and not principal.can(REGISTRY_SCOPE):
        raise Forbidden("only an agency's client decides claims and stops entitlements")


def require(principal: Principal, owner: Owner, what: str) -> None:
    """Forbidden (403) unless the caller may act on this record; the detail names no person."""
    if may_act_on(principal, owner):
        return
    if principal.agency is not None:
        if what == "beneficiary":
            raise Forbidden(f"this beneficiary is not paid by {principal.agency}")
        raise Forbidden(f"this {what} is not {principal.agency}'s")
    raise Forbidden(f"this {what} is not one this client may see")
