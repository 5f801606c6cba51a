"""The running sandbox behind the routes: its state and stores, its callbacks, the timers that
settle, book, reverse and return later, and the draws of the request faults it injects."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime

from shared.clock import utcnow

from .config import SandboxSettings
from .iso import message_id_of
from .population import PopulationRegistry
from .state import (
    PERMANENT_BANK_FAILURES,
    Booking,
    Event,
    IsoMessage,
    SandboxState,
    StatusReport,
    Transfer,
)
from .store import BankStore, PersonStore
from .webhooks import WebhookDispatcher


class Sandbox:
    """State, callbacks and fault injection behind the routes."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.state = SandboxState(settings.iso_bins, BankStore(settings.data_dir))
        self.webhooks = WebhookDispatcher(settings, self.state)
        self.population = PopulationRegistry(PersonStore(settings.data_dir))
        self._timers: set[asyncio.TimerHandle] = set()
        self.bins_by_bic = {
            bank.swift[:8]: bin_ for bin_, bank in self.state.banks.items() if bank.swift
        }

    def reset(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.webhooks.cancel_all()
        self.webhooks.reset_stats()
        self.state.reset()
        self.population.reset()

    # -- request faults -----------------------------------------------------------------------

    async def latency(self) -> None:
        latency_ms = self.state.faults.latency_ms
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)

    def unavailable(self) -> bool:
        return self.state.request_fault(self.state.faults.error_5xx_rate)

    async def maybe_hold(self) -> None:
        """Injected timeout: the work is done but the answer comes later than the caller waits."""
        faults = self.state.faults
        if self.state.request_fault(faults.timeout_rate):
            await asyncio.sleep(faults.timeout_hold_seconds)

    def conflicting_resend(self, key: tuple[str, ...] | None) -> bool:
        """Injected 409: a resend of a request already taken is refused as a duplicate."""
        return (
            key is not None
            and self.state.key_taken(key)
            and self.state.request_fault(self.state.faults.conflict_on_resend_rate)
        )

    # -- what happens later -------------------------------------------------------------------

    def schedule(
        self, settle: Callable[[list[Transfer], datetime], list[Event]], new: list[Transfer]
    ) -> None:
        """Settle new transfers at once, or after the settlement delay (one timer per batch)."""
        if not new:
            return
        self.later(
            self.settings.settlement_delay_ms / 1000,
            lambda: self.webhooks.publish(settle(new, utcnow())),
        )

    @property
    def scheduled(self) -> int:
        """Settlements and follow-ups (bookings of pending entries, reversals, returns) to come."""
        return len(self._timers)

    def later(self, seconds: float, work: Callable[[], None]) -> None:
        """Run `work` after `seconds` (at once for 0); forgotten on reset."""
        if seconds <= 0:
            work()
            return

        def fire() -> None:
            self._timers.discard(handle)
            work()

        handle = asyncio.get_running_loop().call_later(seconds, fire)
        self._timers.add(handle)

    # -- the file bank ------------------------------------------------------------------------

    def schedule_file(
        self, message: IsoMessage, new: list[Transfer], refused: list[tuple[str, str]]
    ) -> None:
        """Process a file's new transfers (after the settlement delay): a pain.002 for what is
        rejected (the file as a whole, or transactions, with those refused at intake), camt.054
        entries for what is booked or pending, and what happens later to the booked ones."""
        if not new:
            return
        self.later(
            self.settings.settlement_delay_ms / 1000,
            functools.partial(self._process_file, message, new, refused),
        )

    def _process_file(
        self, message: IsoMessage, new: list[Transfer], refused: list[tuple[str, str]]
    ) -> None:
        bin_ = message.bin
        report, bookings = self.state.process_file(message, new, utcnow())
        items: list[Booking | StatusReport] = []
        if report is not None:
            if message.group_rejection is None:
                report.rejected = [*refused, *report.rejected]
            items.append(report)
        items.extend(bookings)
        self.webhooks.publish_iso(bin_, items)
        for booking in bookings:
            if booking.status == "PDNG":
                self.later(
                    self.state.faults.pending_seconds, functools.partial(self._book, bin_, booking)
                )
            else:
                self._booked(bin_, booking)

    def _book(self, bin_: str, pending: Booking) -> None:
        booking = self.state.book_pending(pending, utcnow())
        self.webhooks.publish_iso(bin_, [booking])
        self._booked(bin_, booking)

    def _booked(self, bin_: str, booking: Booking) -> None:
        faults = self.state.faults
        for kind, transfer in self.state.follow_up(booking):
            if kind == "reversal":
                self.later(
                    faults.reversal_delay_seconds,
                    functools.partial(self._reverse, bin_, transfer, booking.reference),
                )
            else:
                reason = self.state.rng.choice(PERMANENT_BANK_FAILURES)
                self.later(
                    faults.late_return_delay_seconds,
                    functools.partial(self._return, transfer.end_to_end_id, reason),
                )

    def _reverse(self, bin_: str, transfer: Transfer, reverses: str) -> None:
        reversal = self.state.reverse(transfer, reverses, utcnow())
        if reversal is not None:
            self.webhooks.publish_iso(bin_, [reversal])

    def _return(self, end_to_end_id: str, reason: str) -> None:
        event = self.state.return_transfer(end_to_end_id, reason, utcnow())
        if event is not None:
            self.publish_return(event)

    def publish_return(self, event: Event) -> None:
        if event.transfer.channel == "iso":
            self.webhooks.publish_iso(
                event.transfer.counterparty, [self.state.return_booking(event)]
            )
        else:
            self.webhooks.publish([event])

    def refuse_file(self, bin_: str, raw: bytes, now: datetime) -> None:
        """A file that fails validation is answered with a pain.002 refusing it as a whole
        (FF01), when its MsgId can be read and no file of that id was taken."""
        message_id = message_id_of(raw)
        if message_id is None or self.state.file(bin_, message_id) is not None:
            return
        message = IsoMessage(message_id, bin_, now, 0, 0, 0, group_rejection="FF01")
        self.state.record_file(message, [])
        report = StatusReport(f"STS{self.state.epoch}{message_id}"[:35], message, [])
        self.webhooks.publish_iso(bin_, [report])
