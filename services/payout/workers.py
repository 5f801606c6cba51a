"""The payout's background work, run by `python -m services.payout worker` next to the outbox
relay: the intake-view consumer, account verification, batch submission, the status-inquiry
sweeper and the cycle scheduler. Any number of worker processes may run at once: every piece of
work is claimed with `FOR UPDATE SKIP LOCKED` and a lease, and no call to a bank is made inside
a database transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.payout.adapters.banks.base import (
    DUPLICATE_CODES,
    VNPOST,
    BankChannel,
    CredentialsRefused,
    PaymentBatch,
    PaymentInstruction,
    PaymentStatus,
    PermanentBankError,
    TransientBankError,
    UnknownOutcome,
    describe,
)
from services.payout.adapters.banks.registry import BankChannelRegistry
from services.payout.adapters.repository.reads import cycle_row
from services.payout.domain.model import CREATED, Outcome
from services.payout.domain.outcomes import OutcomePolicy
from services.payout.domain.verification import verdict
from services.payout.service_layer import approvals, submission
from services.payout.service_layer import cycles as cycle_service
from services.payout.service_layer import verification as verification_service
from services.payout.settings import PayoutSettings
from shared.clock import utcnow
from shared.metrics import BATCH_LEASES_LOST
from shared.outbox import Outbox
from shared.periods import current_period, vietnam_date, vietnam_time
from shared.uow import UnitOfWork, unit_of_work
from shared.waiting import sleep_or_stop

log = logging.getLogger(__name__)
T = TypeVar("T")
ACTOR = "payout-worker"


def lists_still_to_send(batch: PaymentBatch, items: Sequence[dict]) -> PaymentBatch:
    """The post office's lists (one per commune, each under its own key) that hold an item it
    has not taken yet, each whole as first sent; lists it took are not sent again."""
    waiting = {item["end_to_end_id"] for item in items if item["state"] == CREATED}
    communes = {i.commune_code for i in batch.items if i.end_to_end_id in waiting}
    kept = tuple(i for i in batch.items if i.commune_code in communes)
    if len(kept) == len(batch.items):
        return batch
    return PaymentBatch.of(batch.batch_id, batch.counterparty, kept, batch.execution_date)


def outcome_policy(settings: PayoutSettings) -> OutcomePolicy:
    return OutcomePolicy(describe=describe, fallback=settings.permanent_failure_fallback)


class PayoutWorkers:
    def __init__(
        self,
        settings: PayoutSettings,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        channels: BankChannelRegistry,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.outbox = outbox
        self.channels = channels
        self.policy = outcome_policy(settings)
        self.batches_sent = 0
        self.inquiries_made = 0
        self.leases_lost = 0

    async def in_transaction(
        self,
        work: Callable[[UnitOfWork], Awaitable[T]],
        attempts: int = 5,
        *,
        now: datetime | None = None,
    ) -> T:
        """Run `work` in its own unit of work (at `now`, else the time it opens), again after a
        deadlock or a lost race (a lost lease is final: trying again would not give it back)."""
        delay = 0.05
        for attempt in range(1, attempts + 1):
            try:
                async with unit_of_work(
                    self.session_factory, self.outbox, ACTOR, now=now, kind=UnitOfWork
                ) as uow:
                    return await work(uow)
            except submission.LeaseLost:
                raise
            except Exception:
                if attempt == attempts:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    # -- loops ------------------------------------------------------------------------------

    async def _loop(
        self, name: str, stop: asyncio.Event, step: Callable[[], Awaitable[bool]], idle: float
    ) -> None:
        backoff = idle
        while not stop.is_set():
            try:
                busy = await step()
                backoff = idle
            except Exception as exc:
                log.warning(
                    "payout worker step failed",
                    exc_info=exc,
                    extra={"fields": {"worker": name, "error": type(exc).__name__}},
                )
                busy = False
                backoff = min(max(backoff * 2, 0.5), 10.0)
            if not busy:
                await sleep_or_stop(stop, backoff)

    async def run_verification(self, stop: asyncio.Event) -> None:
        await self._loop("verification", stop, self.verify_once, self.settings.worker_idle_seconds)

    async def run_submission(self, stop: asyncio.Event) -> None:
        lanes = [
            self._loop(f"submission-{n}", stop, self.submit_once, self.settings.worker_idle_seconds)
            for n in range(self.settings.submit_concurrency)
        ]
        lanes.append(
            self._loop(
                "batching", stop, self.batch_once, max(self.settings.worker_idle_seconds, 0.5)
            )
        )
        await asyncio.gather(*lanes)

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        await self._loop(
            "status-sweeper", stop, self.sweep_once, max(self.settings.worker_idle_seconds, 1.0)
        )

    async def run_scheduler(self, stop: asyncio.Event) -> None:
        async def step() -> bool:
            await self.schedule_once()
            return False

        await self._loop("scheduler", stop, step, self.settings.scheduler_interval_seconds)

    # -- verification -----------------------------------------------------------------------

    async def verify_once(self) -> bool:
        claimed = await self.in_transaction(
            lambda uow: verification_service.claim_verifications(
                uow, self.settings.verification_batch_size, self.settings.lease_seconds
            )
        )
        if not claimed:
            return False
        gate = asyncio.Semaphore(self.settings.verification_concurrency)

        async def ask(
            pending: verification_service.PendingVerification,
        ) -> verification_service.VerificationAnswer:
            async with gate:
                try:
                    channel = self.channels.channel(pending.bank_bin)
                except (ValueError, LookupError):
                    return verification_service.VerificationAnswer(pending, "BANK_NOT_SUPPORTED")
                try:
                    found = await channel.name_inquiry(pending.account_number)
                except (TransientBankError, UnknownOutcome) as exc:
                    return verification_service.VerificationAnswer(
                        pending, None, error=type(exc).__name__
                    )
                except PermanentBankError:
                    return verification_service.VerificationAnswer(pending, "NO_SUCH_ACCOUNT")
                result = verdict(found.status, found.account_name, pending.expected_name)
                return verification_service.VerificationAnswer(
                    pending, result, bank_name=found.account_name
                )

        answers = await asyncio.gather(*(ask(p) for p in claimed))
        done_at = utcnow()
        await self.in_transaction(
            lambda uow: verification_service.record_verifications(
                uow,
                list(answers),
                self.settings.retry_base_seconds,
                self.settings.retry_max_seconds,
            ),
            now=done_at,
        )
        return True

    # -- batches ----------------------------------------------------------------------------

    async def batch_once(self) -> bool:
        await self.in_transaction(
            lambda uow: cycle_service.assign_pending_batches(uow, self.settings.batch_size)
        )
        return False  # a timer, not a queue: it runs every idle period

    async def submit_once(self) -> bool:
        claimed = await self.in_transaction(
            lambda uow: submission.claim_batch(uow, self.settings.lease_seconds)
        )
        if claimed is None:
            return False
        if claimed.action == "send":
            await self.send(claimed)
        else:
            await self.inquire(claimed)
        return True

    def lease_lost(self, claimed: submission.Claimed, during: str) -> None:
        """Another worker owns the batch now: what this one learnt is left to it."""
        self.leases_lost += 1
        BATCH_LEASES_LOST.inc()
        log.warning(
            "batch lease lost to another worker; its result changes nothing",
            extra={
                "fields": {
                    "batch_id": claimed.batch_id,
                    "lease_token": claimed.lease_token,
                    "during": during,
                }
            },
        )

    async def record(
        self, claimed: submission.Claimed, work: Callable[[UnitOfWork], Awaitable[T]]
    ) -> T | None:
        """Record a result under the claim's lease; None if the lease was lost meanwhile."""
        try:
            return await self.in_transaction(work)
        except submission.LeaseLost:
            self.lease_lost(claimed, "recording")
            return None

    @contextlib.asynccontextmanager
    async def keeping_lease(self, claimed: submission.Claimed) -> AsyncIterator[None]:
        """Renew the claim's lease while a counterparty is called, a third of a lease apart, so
        a slow answer never lets another worker take the batch over."""
        lease = self.settings.lease_seconds

        async def renew() -> None:
            while True:
                await asyncio.sleep(lease / 3)
                try:
                    kept = await self.in_transaction(
                        lambda uow: submission.renew_lease(uow, claimed, lease)
                    )
                except Exception as exc:
                    log.warning(
                        "batch lease renewal failed",
                        exc_info=exc,
                        extra={"fields": {"batch_id": claimed.batch_id}},
                    )
                    continue
                if not kept:
                    # Released by this worker meanwhile, or taken over (its write will say so).
                    if await self.in_transaction(
                        lambda uow: submission.lease_taken_over(uow, claimed)
                    ):
                        log.warning(
                            "batch lease taken over while its counterparty was called",
                            extra={
                                "fields": {
                                    "batch_id": claimed.batch_id,
                                    "lease_token": claimed.lease_token,
                                }
                            },
                        )
                    return

        task = asyncio.ensure_future(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep_once(self) -> bool:
        claimed = await self.in_transaction(
            lambda uow: submission.claim_batch(uow, self.settings.lease_seconds, sweep=True)
        )
        if claimed is None:
            return False
        done = await self.record(claimed, lambda uow: submission.complete_if_done(uow, claimed))
        if done is False:
            await self.inquire(claimed)
        return True

    async def send(self, claimed: submission.Claimed) -> None:
        async with self.keeping_lease(claimed):
            await self._send(claimed)

    async def _send(self, claimed: submission.Claimed) -> None:
        # Where the money goes is decided now, on the day it is sent.
        resolved = await self.record(claimed, lambda uow: submission.resolve_accounts(uow, claimed))
        if resolved is None:
            return
        claimed = resolved
        items = await self.in_transaction(lambda uow: submission.batch_items(uow, claimed.batch_id))
        instructions = tuple(
            PaymentInstruction(
                end_to_end_id=item["end_to_end_id"],
                amount=int(item["amount"]),
                account_number=item["account_number"],
                account_name=item["account_name"],
                bank_bin=None if claimed.counterparty == VNPOST else claimed.counterparty,
                commune_code=item["commune_code"],
                remittance_info=item["remittance_info"],
            )
            for item in items
        )
        batch = PaymentBatch(
            batch_id=claimed.batch_id,
            counterparty=claimed.counterparty,
            control_count=claimed.control_count,
            control_sum=claimed.control_sum,
            items=instructions,
            execution_date=claimed.execution_date,
        )
        if not batch.totals_match():
            # Never send more (or other) than the batch declares; a person must look at it.
            log.error(
                "batch items differ from its control totals; not sent",
                extra={"fields": {"batch_id": claimed.batch_id}},
            )
            await self.record(
                claimed,
                lambda uow: submission.record_not_sent(uow, claimed, "CONTROL_TOTALS_MISMATCH"),
            )
            return
        if claimed.counterparty == VNPOST:
            batch = lists_still_to_send(batch, items)
        e2e_ids = [item.end_to_end_id for item in batch.items]
        channel = self.channels.channel(claimed.counterparty)
        try:
            result = await channel.submit_batch(batch)
        except TransientBankError as exc:
            error = str(exc)
            if isinstance(exc, CredentialsRefused):
                log.error(
                    "counterparty refused our credentials; batch retried",
                    extra={
                        "fields": {
                            "batch_id": claimed.batch_id,
                            "counterparty": claimed.counterparty,
                        }
                    },
                )
            await self.record(
                claimed,
                lambda uow: submission.record_retry(
                    uow,
                    claimed,
                    error,
                    self.settings.retry_base_seconds,
                    self.settings.retry_max_seconds,
                ),
            )
            return
        except UnknownOutcome as exc:
            error = str(exc)
            await self.record(claimed, lambda uow: submission.record_unknown(uow, claimed, error))
            return
        except PermanentBankError as exc:
            code = exc.code
            if claimed.attempts <= 1:
                # Refused the first time it was ever sent: the counterparty holds none of it.
                await self.record(
                    claimed,
                    lambda uow: submission.record_refused(uow, claimed, code, e2e_ids, self.policy),
                )
                return
            # A resend refused: an earlier send may have been taken; ask before failing anything.
            findings = await self.statuses(channel, e2e_ids)
            await self.record(
                claimed,
                lambda uow: submission.record_resend_refused(
                    uow,
                    claimed,
                    code,
                    findings,
                    self.policy,
                    retry_base=self.settings.retry_base_seconds,
                    retry_cap=self.settings.retry_max_seconds,
                    inquiry_after_seconds=self.settings.status_inquiry_after_seconds,
                ),
            )
            return
        self.batches_sent += 1
        rejected = list(result.rejected)
        in_doubt = list(result.in_doubt)
        if claimed.attempts > 1:
            # Items refused on a resend fail only if the counterparty does not hold them.
            check = [e2e for e2e, code in rejected if code not in DUPLICATE_CODES]
            if check:
                not_held = set((await self.statuses(channel, check)).never_received)
                in_doubt += [e2e for e2e in check if e2e not in not_held]
                rejected = [
                    (e2e, code) for e2e, code in rejected if e2e not in check or e2e in not_held
                ]
        await self.record(
            claimed,
            lambda uow: submission.record_accepted(
                uow,
                claimed,
                list(result.accepted),
                rejected,
                e2e_ids,
                self.policy,
                self.settings.status_inquiry_after_seconds,
                in_doubt=in_doubt,
                not_sent=list(result.not_sent),
                retry_base=self.settings.retry_base_seconds,
                retry_cap=self.settings.retry_max_seconds,
            ),
        )

    async def statuses(
        self, channel: BankChannel, end_to_end_ids: Sequence[str]
    ) -> submission.InquiryFindings:
        """What the counterparty says of each payment; an unanswered inquiry leaves it in doubt."""
        gate = asyncio.Semaphore(self.settings.status_inquiry_concurrency)

        async def ask(e2e: str) -> PaymentStatus | Exception:
            async with gate:
                try:
                    return await channel.payment_status(e2e)
                except Exception as exc:
                    return exc

        answers = await asyncio.gather(*(ask(e2e) for e2e in end_to_end_ids))
        self.inquiries_made += len(end_to_end_ids)
        findings = submission.InquiryFindings([], [], [], [])
        now = utcnow()
        for e2e, answer in zip(end_to_end_ids, answers, strict=True):
            if isinstance(answer, Exception):
                findings.undetermined.append(e2e)
            elif answer.status == "UNKNOWN_TO_BANK":
                findings.never_received.append(e2e)
            elif answer.status == "PENDING":
                findings.pending.append(e2e)
            else:
                occurred = answer.settled_at or now
                findings.outcomes.append(
                    Outcome(
                        end_to_end_id=e2e,
                        status=answer.status,
                        amount=answer.amount,
                        reason_code=answer.reason_code,
                        bank_reference=answer.bank_reference,
                        occurred_at=occurred,
                        paid_on=vietnam_date(occurred) if answer.status == "PAID_CASH" else None,
                    )
                )
        return findings

    async def inquire(self, claimed: submission.Claimed) -> None:
        async with self.keeping_lease(claimed):
            items = await self.in_transaction(
                lambda uow: submission.open_items(uow, claimed.batch_id)
            )
            channel = self.channels.channel(claimed.counterparty)
            findings = await self.statuses(channel, [item["end_to_end_id"] for item in items])
            await self.record(
                claimed,
                lambda uow: submission.record_inquiry(
                    uow,
                    claimed,
                    findings,
                    self.policy,
                    retry_base=self.settings.retry_base_seconds,
                    retry_cap=self.settings.retry_max_seconds,
                    inquiry_after_seconds=self.settings.status_inquiry_after_seconds,
                ),
            )

    # -- scheduler --------------------------------------------------------------------------

    async def schedule_once(self, now: datetime | None = None) -> cycle_service.CycleStarted | None:
        """Prepare what is due: with a payment calendar, every period whose entry's prepare_on
        has come (periods paid together are prepared together); without one, the month's cycle
        on or after the configured day of the month (Vietnam time). A cycle whose creation
        stopped halfway (its process died) is finished. The scheduler prepares only: nothing it
        makes is sent before a checker approves it."""
        now = now or utcnow()
        planned = await self.in_transaction(
            lambda uow: approvals.periods_to_prepare(uow, vietnam_date(now)), now=now
        )
        if planned is None:
            if vietnam_time(now).day < self.settings.cycle_day:
                return None
            period = current_period(now)
            cycle = await self.in_transaction(lambda uow: cycle_row(uow, period), now=now)
            if cycle is not None and cycle["creation_finished_at"] is not None:
                return None
            planned = [period]

        async def transact(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
            return await self.in_transaction(work, now=now)

        started = None
        for period in planned:
            started = await cycle_service.start_cycle(
                transact,
                period,
                "scheduler",
                self.settings.batch_size,
                self.settings.cycle_chunk_size,
            )
            if started.new_installments or started.created:
                log.info(
                    "cycle prepared by the scheduler; it awaits approval",
                    extra={"fields": {"period": period, "installments": started.new_installments}},
                )
        return started
