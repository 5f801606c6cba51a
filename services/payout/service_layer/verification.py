"""Account verification: pending rows are claimed in batches (`FOR UPDATE SKIP LOCKED`), the
bank is asked outside any transaction, and each result is written with its event in one
transaction. A name inquiry only reads, so a lease that runs out is simply asked again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.payout.adapters.repository import verifications as repository
from services.payout.domain import model
from services.payout.domain.model import backoff_seconds
from services.payout.domain.verification import VerificationResult
from services.payout.service_layer.cycles import release_holds
from shared.events.contracts import AccountVerificationFailed, AccountVerified
from shared.uow import UnitOfWork


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
    uow: UnitOfWork, limit: int, lease_seconds: float
) -> list[PendingVerification]:
    return [
        PendingVerification(
            id=row["id"],
            method_id=row["method_id"],
            beneficiary_id=row["beneficiary_id"],
            bank_bin=row["bank_bin"],
            account_number=row["account_number"],
            expected_name=row["expected_name"],
            attempts=int(row["attempts"]) + 1,
        )
        for row in await repository.claim_due(uow, limit, lease_seconds)
    ]


async def record_verifications(
    uow: UnitOfWork, answers: list[VerificationAnswer], retry_base: float, retry_cap: float
) -> dict[str, int]:
    now = uow.now
    counts: dict[str, int] = {}
    verified_people: list[str] = []
    for answer in answers:
        pending = answer.verification
        if answer.result is None:
            delay = backoff_seconds(pending.attempts, retry_base, retry_cap)
            await repository.retry_later(uow, pending.id, now + timedelta(seconds=delay))
            counts["RETRY"] = counts.get("RETRY", 0) + 1
            continue
        verified = answer.result == "VERIFIED"
        if not await repository.finish(
            uow,
            pending.id,
            "VERIFIED" if verified else "FAILED",
            None if verified else answer.result,
        ):
            continue  # superseded by a newer method meanwhile
        counts[answer.result] = counts.get(answer.result, 0) + 1
        await repository.settle_method(
            uow,
            pending.method_id,
            status=model.METHOD_VERIFIED if verified else model.METHOD_FAILED,
            status_reason=None if verified else answer.result,
            verified_name=answer.bank_name if verified else None,
            verified_at=now if verified else None,
        )
        if verified:
            uow.emit(
                AccountVerified(
                    beneficiary_id=pending.beneficiary_id,
                    method_id=pending.method_id,
                    bank_bin=pending.bank_bin,
                    verified_at=now,
                )
            )
        else:
            uow.emit(
                AccountVerificationFailed(
                    beneficiary_id=pending.beneficiary_id,
                    method_id=pending.method_id,
                    reason=answer.result,
                    failed_at=now,
                )
            )
        verified_people.append(pending.beneficiary_id)
    if verified_people:
        await uow.flush()  # the results' events before those of the holds they release
        await release_holds(uow, sorted(set(verified_people)))
    return counts
