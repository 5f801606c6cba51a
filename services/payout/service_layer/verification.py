"""Account verification: pending rows are claimed in batches (`FOR UPDATE SKIP LOCKED`), the
bank is asked outside any transaction, and each result is written with its event in one
transaction. A name inquiry only reads, so a lease that runs out is simply asked again."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payout.adapters.orm import payment_methods, verifications
from services.payout.domain import model
from services.payout.domain.model import backoff_seconds
from services.payout.domain.verification import VerificationResult
from services.payout.service_layer.common import is_sqlite_session
from services.payout.service_layer.cycles import release_holds
from shared.events.contracts import AccountVerificationFailed, AccountVerified, Contract
from shared.outbox import Outbox


@dataclass(frozen=True, slots=True)
class PendingVerification:
    id: int
    method_id: str
    beneficiary_id: str
    bank_bin: str
    account_number: str
    expected_name: str
    attempts: int


@dataclass(frozen=True, slots=True)
class VerificationAnswer:
    verification: PendingVerification
    result: VerificationResult | None  # None: the bank could not be asked this time
    bank_name: str | None = None
    error: str | None = None


async def claim_verifications(
    session: AsyncSession, now: datetime, limit: int, lease_seconds: float
) -> list[PendingVerification]:
    due = (
        (verifications.c.state == "PENDING") & (verifications.c.next_attempt_at <= now)
    ) | ((verifications.c.state == "IN_PROGRESS") & (verifications.c.lease_until < now))
    query = select(verifications).where(due).order_by(verifications.c.id).limit(limit)
    if not is_sqlite_session(session):
        query = query.with_for_update(skip_locked=True)
    rows = (await session.execute(query)).mappings().all()
    if not rows:
        return []
    taken = (
        await session.execute(
            update(verifications)
            .where(verifications.c.id.in_([row["id"] for row in rows]), due)
            .values(
                state="IN_PROGRESS",
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=verifications.c.attempts + 1,
            )
            .returning(verifications.c.id)
        )
    ).scalars().all()
    taken_ids = set(taken)
    return [
        PendingVerification(
            id=row["id"], method_id=row["method_id"], beneficiary_id=row["beneficiary_id"],
            bank_bin=row["bank_bin"], account_number=row["account_number"],
            expected_name=row["expected_name"], attempts=int(row["attempts"]) + 1,
        )
        for row in rows
        if row["id"] in taken_ids
    ]


async def record_verifications(
    session: AsyncSession,
    outbox: Outbox,
    answers: list[VerificationAnswer],
    now: datetime,
    retry_base: float,
    retry_cap: float,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    events: list[Contract] = []
    verified_people: list[str] = []
    for answer in answers:
        pending = answer.verification
        if answer.result is None:
            await session.execute(
                update(verifications)
                .where(verifications.c.id == pending.id, verifications.c.state == "IN_PROGRESS")
                .values(
                    state="PENDING",
                    lease_until=None,
                    next_attempt_at=now + timedelta(seconds=backoff_seconds(pending.attempts, retry_base, retry_cap)),
                )
            )
            counts["RETRY"] = counts.get("RETRY", 0) + 1
            continue
        verified = answer.result == "VERIFIED"
        done = await session.execute(
            update(verifications)
            .where(verifications.c.id == pending.id, verifications.c.state == "IN_PROGRESS")
            .values(
                state="VERIFIED" if verified else "FAILED",
                reason=None if verified else answer.result,
                lease_until=None,
                completed_at=now,
            )
        )
        if done.rowcount != 1:
            continue  # superseded by a newer method meanwhile
        counts[answer.result] = counts.get(answer.result, 0) + 1
        await session.execute(
            update(payment_methods)
            .where(
                payment_methods.c.method_id == pending.method_id,
                payment_methods.c.status == model.METHOD_PENDING,
            )
            .values(
                status=model.METHOD_VERIFIED if verified else model.METHOD_FAILED,
                status_reason=None if verified else answer.result,
                verified_name=answer.bank_name if verified else None,
                verified_at=now if verified else None,
                updated_at=now,
            )
        )
        if verified:
            events.append(AccountVerified(beneficiary_id=pending.beneficiary_id, method_id=pending.method_id,
                                          bank_bin=pending.bank_bin, verified_at=now))
        else:
            events.append(AccountVerificationFailed(beneficiary_id=pending.beneficiary_id,
                                                    method_id=pending.method_id, reason=answer.result,
                                                    failed_at=now))
        verified_people.append(pending.beneficiary_id)
    if events:
        await outbox.add(session, events)
    if verified_people:
        await release_holds(session, outbox, sorted(set(verified_people)), now)
    return counts

