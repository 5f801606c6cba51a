"""Every statement of identity revalidation: the requests and their pass, the persons intake pays
in a period (read in chunks), the registry's outcomes, and the stop proposals. The service layer
calls these with its unit of work (or, for a read, any connection)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, cast, exists, func, or_, select, update

from services.intake.adapters.orm import beneficiaries, entitlements
from services.intake.adapters.repository import Executor
from services.intake.adapters.revalidation_tables import (
    revalidation_requests,
    revalidation_results,
    stop_proposals,
)
from services.intake.domain.entitlements import ACTIVE, STOPPED
from services.intake.domain.revalidation import DONE, HOLDS, OPEN, PENDING, PROPOSAL_CONFIRMED
from shared.uow import UnitOfWork

# --- requests -----------------------------------------------------------------------------------


async def add_request(uow: UnitOfWork, period: str, opened_at: datetime) -> bool:
    """A pending request for `period`; False when the period already has one."""
    result = await uow.execute(
        uow.insert(revalidation_requests)
        .values(
            period=period,
            state=PENDING,
            requested_by=uow.actor,
            requested_at=uow.now,
            opened_at=opened_at,
            after_beneficiary=None,
            checked=0,
            chunks=0,
            lease_until=None,
            parts=None,
            completed_at=None,
        )
        .on_conflict_do_nothing(index_elements=["period"])
    )
    return bool(result.rowcount)


async def claim_request(uow: UnitOfWork, lease_until: datetime) -> Any | None:
    """The oldest pending request nobody holds (or whose holder's lease ran out), leased."""
    r = revalidation_requests.c
    query = uow.for_update(
        select(r.period, r.after_beneficiary, r.checked, r.chunks)
        .where(r.state == PENDING, or_(r.lease_until.is_(None), r.lease_until < uow.now))
        .order_by(r.requested_at, r.period)
        .limit(1),
        skip_locked=True,
    )
    row = (await uow.execute(query)).first()
    if row is None:
        return None
    await uow.execute(
        update(revalidation_requests).where(r.period == row.period).values(lease_until=lease_until)
    )
    return row


def _at_cursor(period: str, after: str | None) -> Any:
    r = revalidation_requests.c
    cursor = r.after_beneficiary.is_(None) if after is None else r.after_beneficiary == after
    return and_(r.period == period, r.state == PENDING, cursor)


async def advance(
    uow: UnitOfWork,
    period: str,
    after: str | None,
    new_after: str,
    checked: int,
    lease_until: datetime,
) -> bool:
    """Move the pass's cursor from `after` to `new_after` (a chunk done); False when the pass is
    no longer where this worker left it (another one moved it, or it ended)."""
    r = revalidation_requests.c
    result = await uow.execute(
        update(revalidation_requests)
        .where(_at_cursor(period, after))
        .values(
            after_beneficiary=new_after,
            checked=r.checked + checked,
            chunks=r.chunks + 1,
            lease_until=lease_until,
        )
    )
    return bool(result.rowcount)


async def finish(uow: UnitOfWork, period: str, after: str | None, parts: int) -> bool:
    result = await uow.execute(
        update(revalidation_requests)
        .where(_at_cursor(period, after))
        .values(state=DONE, parts=parts, completed_at=uow.now, lease_until=None)
    )
    return bool(result.rowcount)


async def release(uow: UnitOfWork, period: str, after: str | None) -> None:
    """Give the lease back (the registry did not answer): the pass may be taken again at once."""
    await uow.execute(
        update(revalidation_requests).where(_at_cursor(period, after)).values(lease_until=None)
    )


async def request_row(db: Executor, period: str) -> Any | None:
    return (
        await db.execute(
            select(revalidation_requests).where(revalidation_requests.c.period == period)
        )
    ).first()


# --- who is paid in a period ----------------------------------------------------------------------


def _index(column: Any) -> Any:
    """A 'YYYY-MM' column as a month number (year * 12 + month), on SQLite and PostgreSQL."""
    return cast(func.substr(column, 1, 4), Integer) * 12 + cast(func.substr(column, 6, 2), Integer)


def pays_in(period: str) -> Any:
    """The SQL twin of "this entitlement pays an installment in `period`": started, not stopped
    before it, and its schedule reaches it."""
    e = entitlements.c
    month = int(period[:4]) * 12 + int(period[5:7])
    return and_(
        e.start_period <= period,
        or_(e.status == ACTIVE, and_(e.status == STOPPED, e.stop_effective_period > period)),
        or_(
            e.schedule_kind == "OPEN_MONTHLY",
            and_(e.schedule_kind == "ONE_OFF", e.start_period == period),
            and_(
                e.schedule_kind == "FIXED_MONTHLY",
                _index(e.start_period) + e.installments - 1 >= month,
            ),
        ),
    )


async def persons_paid(db: Executor, period: str, after: str | None, limit: int) -> list[Any]:
    """The next `limit` beneficiaries (in id order, after `after`) paid in `period`, with what
    the registry is asked about them."""
    b = beneficiaries.c
    query = (
        select(b.id, b.national_id, b.full_name, b.date_of_birth)
        .where(
            exists().where(entitlements.c.beneficiary_id == b.id, pays_in(period)),
            *([b.id > after] if after is not None else []),
        )
        .order_by(b.id)
        .limit(limit)
    )
    return list(await db.execute(query))


# --- outcomes -------------------------------------------------------------------------------------


async def write_results(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await uow.execute(
            uow.insert(revalidation_results).on_conflict_do_nothing(
                index_elements=["period", "beneficiary_id"]
            ),
            list(rows),
        )


async def holds_of(db: Executor, period: str) -> list[tuple[str, str]]:
    """(beneficiary id, outcome) of everyone held in `period`, in id order."""
    r = revalidation_results.c
    rows = await db.execute(
        select(r.beneficiary_id, r.outcome)
        .where(r.period == period, r.outcome.in_(HOLDS))
        .order_by(r.beneficiary_id)
    )
    return [(row.beneficiary_id, row.outcome) for row in rows]


async def results_of(db: Executor, period: str) -> dict[str, Any]:
    r = revalidation_results.c
    rows = await db.execute(
        select(r.beneficiary_id, r.outcome, r.date_of_death).where(r.period == period)
    )
    return {row.beneficiary_id: row for row in rows}


# --- stop proposals -------------------------------------------------------------------------------


async def open_entitlements_of(db: Executor, beneficiary_ids: Sequence[str]) -> list[Any]:
    if not beneficiary_ids:
        return []
    e = entitlements.c
    rows = await db.execute(
        select(e.id, e.beneficiary_id, e.agency)
        .where(e.beneficiary_id.in_(list(beneficiary_ids)), e.status == ACTIVE)
        .order_by(e.id)
    )
    return list(rows)


async def proposed_entitlements(
    db: Executor, entitlement_ids: Sequence[str], reason: str
) -> set[str]:
    if not entitlement_ids:
        return set()
    p = stop_proposals.c
    rows = await db.execute(
        select(p.entitlement_id).where(
            p.entitlement_id.in_(list(entitlement_ids)), p.reason == reason
        )
    )
    return {row.entitlement_id for row in rows}


async def write_proposals(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await uow.execute(
            uow.insert(stop_proposals).on_conflict_do_nothing(
                index_elements=["entitlement_id", "reason"]
            ),
            list(rows),
        )


async def confirm_proposals(uow: UnitOfWork, entitlement_id: str) -> list[str]:
    """The open proposals of an entitlement, now CONFIRMED (it was stopped); their ids."""
    p = stop_proposals.c
    rows = await uow.execute(
        select(p.id).where(p.entitlement_id == entitlement_id, p.state == OPEN).order_by(p.id)
    )
    ids = [row.id for row in rows]
    if ids:
        await uow.execute(
            update(stop_proposals)
            .where(p.id.in_(ids), p.state == OPEN)
            .values(state=PROPOSAL_CONFIRMED, resolved_at=uow.now)
        )
    return ids


async def proposals_page(
    db: Executor,
    agency: str | None,
    state: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
    """Stop proposals, oldest first (keyset on created_at, id): of `agency` only when given."""
    p = stop_proposals.c
    conditions = []
    if agency is not None:
        conditions.append(p.agency == agency)
    if state is not None:
        conditions.append(p.state == state)
    if after is not None:
        created_at, proposal_id = after
        conditions.append(
            or_(p.created_at > created_at, and_(p.created_at == created_at, p.id > proposal_id))
        )
    rows = await db.execute(
        select(stop_proposals).where(*conditions).order_by(p.created_at, p.id).limit(limit)
    )
    return list(rows)
