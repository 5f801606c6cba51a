"""The sandbox's in-memory world: accounts, transfers, cash-list items, the ledger of credits,
statements and the faults to inject. Every operation is O(1) per transfer."""

from __future__ import annotations

import random
import secrets
import string
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.banks import banks
from shared.periods import vietnam_date

VNPOST = "VNPOST"

PERMANENT_BANK_FAILURES = ("AC01", "AC04", "AC06", "MD07")
ACCOUNT_STATUS_FAILURES = {"CLOSED": "AC04", "BLOCKED": "AC06", "DECEASED": "MD07"}
CASH_RETURN_REASONS = ("NOT_FOUND", "REFUSED", "DECEASED")
CASH_OUTCOMES = ("PAID", "PENDING", *CASH_RETURN_REASONS)

AccountStatus = Literal["ACTIVE", "CLOSED", "BLOCKED", "DECEASED"]


def fold_name(text: str) -> str:
    """A holder name as Vietnamese banks keep it: upper case ASCII, diacritics dropped, đ -> D."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.upper().split())


def iso_utc(moment: datetime | None) -> str | None:
    """An instant as the counterparties write it: UTC, milliseconds, a Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Faults(BaseModel):
    """Faults to inject. 5xx and timeouts apply per request (submissions and name inquiries),
    permanent failures per transfer, callback faults per delivery.

    Ambiguous answers apply to requests that move money (transfers, ISO files, cash lists): the
    request is taken, then the caller gets a gateway error (`error_after_accept_*`), a 2xx body
    it cannot read, or its answer late (`slow_answer_*`). A resend (an idempotency key already
    taken) may be answered 409 `DUPLICATE_REQUEST` and changes nothing. `fault_budget` bounds
    how many request faults are injected in all (then none), so one list of many can be hit.
    """

    model_config = ConfigDict(extra="forbid")

    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_hold_seconds: float = Field(10.0, ge=0, le=600)
    error_5xx_rate: float = Field(0.0, ge=0, le=1)
    duplicate_callback_rate: float = Field(0.0, ge=0, le=1)
    reorder_callback_rate: float = Field(0.0, ge=0, le=1)
    permanent_failure_rate: float = Field(0.0, ge=0, le=1)
    latency_ms: int = Field(0, ge=0, le=600_000)
    callback_delay_ms: int = Field(0, ge=0, le=600_000)
    error_after_accept_rate: float = Field(0.0, ge=0, le=1)
    error_after_accept_status: Literal[502, 504] = 504
    unreadable_answer_rate: float = Field(0.0, ge=0, le=1)
    slow_answer_rate: float = Field(0.0, ge=0, le=1)
    slow_answer_seconds: float = Field(0.0, ge=0, le=600)
    conflict_on_resend_rate: float = Field(0.0, ge=0, le=1)
    fault_budget: int | None = Field(None, ge=0)
    seed: int | None = None
    # How the ISO file bank writes its camt.054 and pain.002 (see iso.py): the share of entries
    # that carry an NtryRef; a file's transfers booked as one batch entry (at most
    # `batch_booking_max` each) or one entry each; entries first notified as pending, then
    # booked; bookings reversed later; returns (credits) some time after the booking, their
    # booking date `late_return_days` later (simulated); files refused as a whole (pain.002
    # group status RJCT, FF01).
    ntry_ref_share: float = Field(0.5, ge=0, le=1)
    batch_booking: bool = True
    batch_booking_max: int = Field(5_000, ge=1, le=100_000)
    pending_first_rate: float = Field(0.0, ge=0, le=1)
    pending_seconds: float = Field(0.5, ge=0, le=600)
    reversal_rate: float = Field(0.0, ge=0, le=1)
    reversal_delay_seconds: float = Field(1.0, ge=0, le=600)
    late_return_rate: float = Field(0.0, ge=0, le=1)
    late_return_delay_seconds: float = Field(2.0, ge=0, le=600)
    late_return_days: int = Field(0, ge=0, le=60)
    group_rejection_rate: float = Field(0.0, ge=0, le=1)


class Account:
    __slots__ = ("holder_name", "status")

    def __init__(self, holder_name: str, status: str) -> None:
        self.holder_name = holder_name
        self.status = status


class Transfer:
    """One payment received by a bank (channel napas or iso) or the post office (vnpost). Its
    status: PENDING, SETTLED (credited), FAILED, RETURNED (credited, then sent back), REVERSED
    (the file bank's booked debit undone: credited, then the money back), PAID (cash)."""

    __slots__ = (
        "account_bin",
        "account_number",
        "amount",
        "batch_key",
        "channel",
        "commune_code",
        "counterparty",
        "credited",
        "debtor_account",
        "end_to_end_id",
        "list_id",
        "message_id",
        "paid_on",
        "payment_info_id",
        "reason_code",
        "received_at",
        "recredit_attempts",
        "reference",
        "settled_at",
        "staff_id",
        "status",
        "times_received",
    )

    def __init__(
        self,
        end_to_end_id: str,
        counterparty: str,
        channel: str,
        amount: int,
        batch_key: tuple[str, ...],
        reference: str,
        received_at: datetime,
        account_number: str | None = None,
        account_bin: str | None = None,
        commune_code: str | None = None,
        list_id: str | None = None,
        debtor_account: str | None = None,
    ) -> None:
        self.end_to_end_id = end_to_end_id
        self.counterparty = counterparty
        self.channel = channel
        self.amount = amount
        self.account_number = account_number
        self.account_bin = account_bin
        self.batch_key = batch_key
        self.status = "PENDING"
        self.reason_code: str | None = None
        self.reference = reference
        self.received_at = received_at
        self.settled_at: datetime | None = None
        self.times_received = 1
        self.recredit_attempts = 0
        self.commune_code = commune_code
        self.list_id = list_id
        self.staff_id: str | None = None
        self.paid_on: date | None = None
        self.debtor_account = debtor_account
        self.credited = False
        self.message_id: str | None = None  # the pain.001 (MsgId, PmtInfId) that carried it
        self.payment_info_id: str | None = None


@dataclass(slots=True)
class Event:
    """An outcome to call back. Its id is stable: every (re)delivery repeats it."""

    event_id: str
    kind: str  # transfer.settled | transfer.failed | transfer.returned | cash.paid | cash.returned
    transfer: Transfer
    occurred_at: datetime
    reason_code: str | None


Route = tuple[str, str]  # ("banks", bin) | ("iso", bin) | ("vnpost", "VNPOST")


@dataclass(slots=True)
class IsoMessage:
    message_id: str
    bin: str
    received_at: datetime
    number_of_transactions: int
    control_sum: int
    payment_infos: list[tuple[str, list[str]]]  # (PmtInfId, end-to-end ids)
    rejected: dict[str, str]
    group_rejection: str | None = None  # the reason the whole file was refused (FF01)


@dataclass(slots=True)
class Booking:
    """One camt.054 entry of the file bank: transfers debited (one, or a batch of one pain.001
    payment information block), pending or booked; a reversal of a booked debit (a credit,
    RvslInd); or a return (a credit with return information). `reference` is the entry's
    AcctSvcrRef, stable across redeliveries; `entry_ref` its NtryRef when the bank writes one."""

    reference: str
    kind: Literal["debit", "reversal", "return"]
    status: Literal["BOOK", "PDNG"]
    transfers: list[Transfer]
    booked_at: datetime
    entry_ref: str | None = None
    reason_code: str | None = None
    batch: bool = False
    reverses: str | None = None  # the AcctSvcrRef of the booking a reversal undoes


@dataclass(slots=True)
class StatusReport:
    """A pain.002 the file bank sends of its own accord: a file refused as a whole, or the
    transactions of a file it rejected while processing it."""

    report_id: str
    message: IsoMessage
    rejected: list[tuple[str, str]]  # (end-to-end id, reason code); empty for a group refusal


@dataclass(slots=True)
class CounterpartyTotals:
    received: int = 0
    credits: int = 0
    total_credited: int = 0
    failed: int = 0
    returned: int = 0
    total_returned: int = 0
    reversed: int = 0
    total_reversed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "credits": self.credits,
            "total_credited": self.total_credited,
            "failed": self.failed,
            "returned": self.returned,
            "total_returned": self.total_returned,
            "reversed": self.reversed,
            "total_reversed": self.total_reversed,
        }


@dataclass(slots=True)
class ItemIn:
    """A transfer or cash item as read from a request, before the sandbox takes it."""

    end_to_end_id: str
    amount: Any
    currency: str = "VND"
    account_number: str | None = None
    account_bin: str | None = None
    commune_code: str | None = None
    rejection: str | None = None  # set when the request itself already shows a fault


@dataclass
class Intake:
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    new: list[Transfer] = field(default_factory=list)


def _token(length: int = 4) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _refusal(item: ItemIn) -> str | None:
    """Why a new item is refused at intake (its request already shows a fault, a currency
    other than VND, an amount that is not a positive whole number of dong), or None."""
    if item.rejection is not None:
        return item.rejection
    if item.currency != "VND":
        return "AM03"
    if type(item.amount) is not int or item.amount <= 0:
        return "AM12"
    return None


class SandboxState:
    def __init__(self, iso_bins: Iterable[str]) -> None:
        self.banks = banks()
        self.iso_bins = frozenset(iso_bins)
        self.faults = Faults()
        self.rng = random.Random()
        self.reset()

    def reset(self) -> None:
        self.epoch = _token()
        self._sequence = 0
        self.accounts: dict[tuple[str, str], Account] = {}
        self._account_kinds: dict[tuple[str, str], Account] = {}
        self.transfers: dict[str, Transfer] = {}
        self.order: list[Transfer] = []
        self.iso_messages: dict[tuple[str, str], IsoMessage] = {}
        self.statements: dict[tuple[str, date], list[Transfer]] = {}
        self.cash_presets: dict[str, str] = {}
        self.totals: dict[str, CounterpartyTotals] = {}
        self.credits = 0
        self.total_credited = 0
        self.duplicates = 0
        self.taken_keys: set[tuple[str, ...]] = set()  # idempotency keys of money-moving requests
        self.set_faults(Faults())

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self.faults_left = faults.fault_budget
        self.rng = random.Random(faults.seed) if faults.seed is not None else random.Random()

    def chance(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self.rng.random() < rate)

    def request_fault(self, rate: float) -> bool:
        """Whether to inject a request fault now, within the fault budget."""
        if self.faults_left == 0 or not self.chance(rate):
            return False
        if self.faults_left is not None:
            self.faults_left -= 1
        return True

    # -- reference data -------------------------------------------------------------------

    def is_bank(self, bin_: str) -> bool:
        return bin_ in self.banks

    def is_iso_bank(self, bin_: str) -> bool:
        return bin_ in self.iso_bins and bin_ in self.banks

    def _next_reference(self, prefix: str) -> str:
        self._sequence += 1
        return f"{prefix}{self.epoch}{self._sequence:09d}"

    def _totals(self, counterparty: str) -> CounterpartyTotals:
        totals = self.totals.get(counterparty)
        if totals is None:
            totals = self.totals[counterparty] = CounterpartyTotals()
        return totals

    # -- accounts -------------------------------------------------------------------------

    def seed_accounts(self, rows: Iterable[tuple[str, str, str, str]]) -> int:
        # An account is never changed once seeded, and names repeat across a province's roll:
        # one Account per holder name and status, and one string per bank, however many
        # accounts (a million of them would otherwise take half a gigabyte).
        kinds = self._account_kinds
        count = 0
        for bin_, account_number, holder_name, status in rows:
            kind = (fold_name(holder_name), status)
            account = kinds.get(kind)
            if account is None:
                account = kinds[kind] = Account(*kind)
            self.accounts[(sys.intern(bin_), account_number)] = account
            count += 1
        return count

    def account(self, bin_: str, account_number: str) -> Account | None:
        return self.accounts.get((bin_, account_number))

    # -- intake ---------------------------------------------------------------------------

    def take(
        self,
        counterparty: str,
        channel: str,
        batch_key: tuple[str, ...],
        items: Iterable[ItemIn],
        now: datetime,
        *,
        list_id: str | None = None,
        debtor_account: str | None = None,
    ) -> Intake:
        """Take a batch's items: new end-to-end ids become PENDING transfers; an id already
        received is accepted again and changes nothing. A resend under another batch (or to
        another counterparty) of an id that is not failed is counted as an attempted re-credit."""
        intake = Intake()
        seen: set[str] = set()
        totals = self._totals(counterparty)
        prefix = "BP" if channel == "vnpost" else "FT"
        for item in items:
            e2e = item.end_to_end_id
            if e2e in seen:
                intake.rejected.append((e2e, "AM05"))
                continue
            seen.add(e2e)
            existing = self.transfers.get(e2e)
            if existing is not None:
                self._received_again(existing, batch_key, counterparty)
                intake.accepted.append(e2e)
                continue
            refusal = _refusal(item)
            if refusal is not None:
                intake.rejected.append((e2e, refusal))
                continue
            transfer = Transfer(
                end_to_end_id=e2e,
                counterparty=counterparty,
                channel=channel,
                amount=item.amount,
                batch_key=batch_key,
                reference=self._next_reference(prefix),
                received_at=now,
                account_number=item.account_number,
                account_bin=item.account_bin or counterparty,
                commune_code=item.commune_code,
                list_id=list_id,
                debtor_account=debtor_account,
            )
            self.transfers[e2e] = transfer
            self.order.append(transfer)
            intake.new.append(transfer)
            intake.accepted.append(e2e)
            totals.received += 1
        return intake

    def _received_again(
        self, existing: Transfer, batch_key: tuple[str, ...], counterparty: str
    ) -> None:
        existing.times_received += 1
        resent_elsewhere = existing.batch_key != batch_key or existing.counterparty != counterparty
        if resent_elsewhere and existing.status != "FAILED":
            existing.recredit_attempts += 1
            if existing.recredit_attempts == 1:
                self.duplicates += 1

    # -- outcomes -------------------------------------------------------------------------

    def _credit(self, transfer: Transfer, now: datetime) -> None:
        if transfer.credited:  # never twice, whatever happens
            return
        transfer.credited = True
        transfer.settled_at = now
        self.credits += 1
        self.total_credited += transfer.amount
        totals = self._totals(transfer.counterparty)
        totals.credits += 1
        totals.total_credited += transfer.amount
        self.statements.setdefault((transfer.counterparty, vietnam_date(now)), []).append(transfer)

    def bank_verdict(self, transfer: Transfer) -> str | None:
        """The reason a transfer fails (the account decides, unless a permanent failure is
        injected), or None: it is paid."""
        if self.chance(self.faults.permanent_failure_rate):
            return self.rng.choice(PERMANENT_BANK_FAILURES)
        account = self.accounts.get((transfer.account_bin or "", transfer.account_number or ""))
        if account is None:
            return "AC01"
        return ACCOUNT_STATUS_FAILURES.get(account.status)

    def _fail(self, transfer: Transfer, reason: str) -> None:
        transfer.status = "FAILED"
        transfer.reason_code = reason
        self._totals(transfer.counterparty).failed += 1

    def _settle(self, transfer: Transfer, now: datetime) -> None:
        transfer.status = "SETTLED"
        self._credit(transfer, now)

    def settle_bank(self, transfers: Iterable[Transfer], now: datetime) -> list[Event]:
        """Decide each pending bank transfer."""
        events: list[Event] = []
        for transfer in transfers:
            if transfer.status != "PENDING":
                continue
            reason = self.bank_verdict(transfer)
            if reason is None:
                self._settle(transfer, now)
                events.append(
                    Event(f"{transfer.reference}-S", "transfer.settled", transfer, now, None)
                )
            else:
                self._fail(transfer, reason)
                events.append(
                    Event(f"{transfer.reference}-F", "transfer.failed", transfer, now, reason)
                )
        return events

    # -- the file bank --------------------------------------------------------------------

    def _booking(self, prefix: str, **fields: Any) -> Booking:
        reference = self._next_reference(prefix)
        entry_ref = None
        if self.chance(self.faults.ntry_ref_share):
            entry_ref = "N" + reference[len(prefix) :]
        return Booking(reference=reference, entry_ref=entry_ref, **fields)

    def process_file(
        self, message: IsoMessage, transfers: list[Transfer], now: datetime
    ) -> tuple[StatusReport | None, list[Booking]]:
        """The file bank processes the new transfers of one file: it refuses the whole file
        (injected: group status RJCT, FF01, nothing moves), or decides each transfer. The
        rejected ones are reported in a pain.002; the others are booked as debits, per payment
        information block as batch entries (or one entry each), some first as pending: a
        PDNG booking's transfers stay PENDING until `book_pending`."""
        faults = self.faults
        pending = [t for t in transfers if t.status == "PENDING"]
        if pending and message.group_rejection is None and self.chance(faults.group_rejection_rate):
            message.group_rejection = "FF01"
        if message.group_rejection is not None:
            for transfer in pending:
                self._fail(transfer, message.group_rejection)
            return StatusReport(self._next_reference("ST"), message, []), []
        rejected: list[tuple[str, str]] = []
        groups: dict[str | None, list[Transfer]] = {}
        for transfer in pending:
            reason = self.bank_verdict(transfer)
            if reason is not None:
                self._fail(transfer, reason)
                rejected.append((transfer.end_to_end_id, reason))
            else:
                groups.setdefault(transfer.payment_info_id, []).append(transfer)
        report = StatusReport(self._next_reference("ST"), message, rejected) if rejected else None
        return report, self._book_debits(list(groups.values()), now)

    def _book_debits(self, groups: list[list[Transfer]], now: datetime) -> list[Booking]:
        """Debit entries for the paid transfers of each payment information block: batch
        entries of at most `batch_booking_max` (or one each), some first as pending."""
        faults = self.faults
        size = faults.batch_booking_max if faults.batch_booking else 1
        bookings: list[Booking] = []
        for group in groups:
            for start in range(0, len(group), size):
                part = group[start : start + size]
                first = "PDNG" if self.chance(faults.pending_first_rate) else "BOOK"
                booking = self._booking(
                    "BK",
                    kind="debit",
                    status=first,
                    transfers=part,
                    booked_at=now,
                    batch=faults.batch_booking,
                )
                if first == "BOOK":
                    for transfer in part:
                        self._settle(transfer, now)
                bookings.append(booking)
        return bookings

    def book_pending(self, pending: Booking, now: datetime) -> Booking:
        """The booking that follows a pending entry: the same transfers, now paid."""
        for transfer in pending.transfers:
            self._settle(transfer, now)
        return self._booking(
            "BK",
            kind="debit",
            status="BOOK",
            transfers=pending.transfers,
            booked_at=now,
            batch=pending.batch,
        )

    def follow_up(self, booking: Booking) -> list[tuple[str, Transfer]]:
        """What happens later to each transfer of a booked debit: ("reversal", t) or
        ("return", t), drawn at the injected rates."""
        later: list[tuple[str, Transfer]] = []
        faults = self.faults
        for transfer in booking.transfers:
            if self.chance(faults.reversal_rate):
                later.append(("reversal", transfer))
            elif self.chance(faults.late_return_rate):
                later.append(("return", transfer))
        return later

    def reverse(self, transfer: Transfer, reverses: str, now: datetime) -> Booking | None:
        """A booked debit undone by the bank: the money is back on the debtor's account, the
        beneficiary holds nothing (the credit stays counted, with its reversal beside it)."""
        if transfer.status != "SETTLED":
            return None
        transfer.status = "REVERSED"
        totals = self._totals(transfer.counterparty)
        totals.reversed += 1
        totals.total_reversed += transfer.amount
        return self._booking(
            "RV",
            kind="reversal",
            status="BOOK",
            transfers=[transfer],
            booked_at=now,
            reverses=reverses,
        )

    def return_booking(self, event: Event) -> Booking:
        """The credit entry of a returned transfer, booked `late_return_days` after the
        transfer's own booking (simulated time)."""
        days = self.faults.late_return_days
        booked_at = event.occurred_at
        if days:
            booked_at = (event.transfer.settled_at or event.occurred_at) + timedelta(days=days)
        return self._booking(
            "RT",
            kind="return",
            status="BOOK",
            transfers=[event.transfer],
            booked_at=booked_at,
            reason_code=event.reason_code,
        )

    def return_transfer(self, end_to_end_id: str, reason_code: str, now: datetime) -> Event | None:
        """A credited bank transfer sent back by the beneficiary's bank."""
        transfer = self.transfers.get(end_to_end_id)
        if transfer is None or transfer.channel == "vnpost" or transfer.status != "SETTLED":
            return None
        transfer.status = "RETURNED"
        transfer.reason_code = reason_code
        totals = self._totals(transfer.counterparty)
        totals.returned += 1
        totals.total_returned += transfer.amount
        return Event(f"{transfer.reference}-R", "transfer.returned", transfer, now, reason_code)

    def settle_cash(self, transfers: Iterable[Transfer], now: datetime) -> list[Event]:
        """The post office pays or returns each pending item (preset outcomes first)."""
        events: list[Event] = []
        faults = self.faults
        for transfer in transfers:
            if transfer.status != "PENDING":
                continue
            outcome = self.cash_presets.get(transfer.end_to_end_id)
            if outcome is None:
                if self.chance(faults.permanent_failure_rate):
                    outcome = self.rng.choice(CASH_RETURN_REASONS)
                else:
                    outcome = "PAID"
            if outcome == "PENDING":
                continue
            transfer.staff_id = (
                f"BD{transfer.commune_code or '00000'}-{self.rng.randint(1, 20):02d}"
            )
            if outcome == "PAID":
                transfer.status = "PAID"
                transfer.paid_on = vietnam_date(now)
                self._credit(transfer, now)
                events.append(Event(f"{transfer.reference}-P", "cash.paid", transfer, now, None))
            else:
                transfer.status = "RETURNED"
                transfer.reason_code = outcome
                totals = self._totals(VNPOST)
                totals.returned += 1
                totals.total_returned += transfer.amount
                self.statements.setdefault((VNPOST, vietnam_date(now)), []).append(transfer)
                events.append(
                    Event(f"{transfer.reference}-R", "cash.returned", transfer, now, outcome)
                )
        return events

    # -- views ----------------------------------------------------------------------------

    def transfer_for(self, counterparty: str, end_to_end_id: str) -> Transfer | None:
        transfer = self.transfers.get(end_to_end_id)
        if transfer is None or transfer.counterparty != counterparty:
            return None
        return transfer

    def bank_status(self, transfer: Transfer) -> dict[str, Any]:
        # A reversed booking is money back, as a return is, in the JSON status answer.
        return {
            "end_to_end_id": transfer.end_to_end_id,
            "status": "RETURNED" if transfer.status == "REVERSED" else transfer.status,
            "reversed": transfer.status == "REVERSED",
            "reason_code": transfer.reason_code,
            "amount": transfer.amount,
            "bank_reference": transfer.reference,
            "settled_at": iso_utc(transfer.settled_at),
        }

    def cash_status(self, transfer: Transfer) -> dict[str, Any]:
        return {
            "end_to_end_id": transfer.end_to_end_id,
            "status": transfer.status,
            "amount": transfer.amount,
            "receipt_number": transfer.reference,
            "list_id": transfer.list_id,
            "commune_code": transfer.commune_code,
            "paid_on": transfer.paid_on.isoformat() if transfer.paid_on else None,
            "staff_id": transfer.staff_id,
            "return_reason": transfer.reason_code,
            "settled_at": iso_utc(transfer.settled_at),
        }

    def bank_statement(self, bin_: str, day: date) -> dict[str, Any]:
        entries = []
        total = 0
        for transfer in self.statements.get((bin_, day), ()):
            status = transfer.status if transfer.status in ("RETURNED", "REVERSED") else "CREDITED"
            if status == "CREDITED":
                total += transfer.amount
            entries.append(
                {
                    "end_to_end_id": transfer.end_to_end_id,
                    "amount": transfer.amount,
                    "bank_reference": transfer.reference,
                    "value_date": day.isoformat(),
                    "status": status,
                }
            )
        return {"bin": bin_, "date": day.isoformat(), "entries": entries, "total_credited": total}

    def cash_statement(self, day: date) -> dict[str, Any]:
        entries = []
        total = 0
        for transfer in self.statements.get((VNPOST, day), ()):
            if transfer.status == "PAID":
                total += transfer.amount
            entries.append(
                {
                    "end_to_end_id": transfer.end_to_end_id,
                    "amount": transfer.amount,
                    "receipt_number": transfer.reference,
                    "value_date": day.isoformat(),
                    "status": transfer.status,
                    "staff_id": transfer.staff_id,
                    "commune_code": transfer.commune_code,
                }
            )
        return {
            "counterparty": VNPOST,
            "date": day.isoformat(),
            "entries": entries,
            "total_paid": total,
        }

    def ledger(self) -> dict[str, Any]:
        """Credits are counted gross; what came back (returns, reversals) beside them, and the
        net that beneficiaries still hold."""
        returned = sum(t.total_returned for cp, t in self.totals.items() if cp != VNPOST)
        reversed_ = sum(t.total_reversed for t in self.totals.values())
        return {
            "credits": self.credits,
            "total_credited": self.total_credited,
            "returned": sum(t.returned for cp, t in self.totals.items() if cp != VNPOST),
            "total_returned": returned,
            "reversed": sum(t.reversed for t in self.totals.values()),
            "total_reversed": reversed_,
            "net_credited": self.total_credited - returned - reversed_,
            "duplicates": self.duplicates,
            "transfers": len(self.transfers),
            "by_counterparty": {cp: totals.as_dict() for cp, totals in sorted(self.totals.items())},
        }

    def ledger_entries(self, limit: int, offset: int) -> dict[str, Any]:
        window = self.order[offset : offset + limit]
        return {
            "total": len(self.order),
            "offset": offset,
            "entries": [
                {
                    "end_to_end_id": t.end_to_end_id,
                    "amount": t.amount,
                    "counterparty": t.counterparty,
                    "status": t.status,
                    "reason_code": t.reason_code,
                    "credited_at": iso_utc(t.settled_at) if t.credited else None,
                    "times_received": t.times_received,
                    "recredit_attempts": t.recredit_attempts,
                }
                for t in window
            ],
        }
