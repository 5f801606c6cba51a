"""The sandbox's world: accounts, transfers, cash-list items, the ledger of credits,
statements and the faults to inject, and the rules that move them. What grows with a cycle is
kept in the store (store.py), which writes what an operation changed once it is done.
Every operation is O(1) per transfer."""

from __future__ import annotations

import random
import secrets
import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from shared.banks import banks
from shared.periods import vietnam_date

if TYPE_CHECKING:
    from .store import BankStore, FileLine

VNPOST = "VNPOST"

PERMANENT_BANK_FAILURES = ("AC01", "AC04", "AC06", "MD07")
ACCOUNT_STATUS_FAILURES = {"CLOSED": "AC04", "BLOCKED": "AC06", "DECEASED": "MD07"}
CASH_RETURN_REASONS = ("NOT_FOUND", "REFUSED", "DECEASED")
CASH_OUTCOMES = ("PAID", "PENDING", *CASH_RETURN_REASONS)

AccountStatus = Literal["ACTIVE", "CLOSED", "BLOCKED", "DECEASED"]


@lru_cache(maxsize=4096)  # names repeat across a province's roll
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


class Account(NamedTuple):
    holder_name: str
    status: str


class Transfer:
    """One payment received by a bank (channel napas or iso) or the post office (vnpost). Its
    status: PENDING, SETTLED (credited), FAILED, RETURNED (credited, then sent back), REVERSED
    (the file bank's booked debit undone: credited, then the money back), PAID (cash).

    `seq` is its place in the order received; `statement_day` (a date ordinal) and
    `statement_line` where it stands on its counterparty's statements, once it does."""

    __slots__ = (
        "__weakref__",  # the store knows the transfers in flight by weak reference
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
        "seq",
        "settled_at",
        "staff_id",
        "statement_day",
        "statement_line",
        "status",
        "times_received",
    )

    def __init__(
        self,
        end_to_end_id: str,
        counterparty: str,
        channel: str,
        amount: int,
        batch_key: str,
        reference: str,
        received_at: datetime,
        account_number: str | None = None,
        account_bin: str | None = None,
        commune_code: str | None = None,
        list_id: str | None = None,
        debtor_account: str | None = None,
        message_id: str | None = None,
        payment_info_id: str | None = None,
    ) -> None:
        self.seq = 0
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
        self.message_id = message_id  # the pain.001 (MsgId, PmtInfId) that carried it
        self.payment_info_id = payment_info_id
        self.statement_day: int | None = None
        self.statement_line: int | None = None


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
    """A pain.001 as the file bank keeps it; its transactions are in the store."""

    message_id: str
    bin: str
    received_at: datetime
    number_of_transactions: int
    control_sum: int
    blocks: int  # payment information blocks read (0: refused unread)
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
    payment_info_id: str | None = None  # the PmtInf of a file that carried it


@dataclass
class Intake:
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    new: list[Transfer] = field(default_factory=list)

    @property
    def refused(self) -> list[tuple[str, str]]:
        """The rejected ids that were never taken (not a second copy of one accepted)."""
        accepted = set(self.accepted)
        return [(e2e, code) for e2e, code in self.rejected if e2e not in accepted]


@dataclass(slots=True)
class Statement:
    """A counterparty's statement of a day, read a page at a time (a bank's day can hold
    hundreds of thousands of lines): `head` (the fields before the entries), then pages of
    (entries, their total), then the total under `total_key`."""

    head: dict[str, str]
    total_key: str
    pages: Iterator[tuple[list[dict[str, Any]], int]]


def _key_text(key: tuple[str, ...]) -> str:
    return "\x1f".join(key)


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
    def __init__(self, iso_bins: Iterable[str], store: BankStore) -> None:
        self.banks = banks()
        self.iso_bins = frozenset(iso_bins)
        self.store = store
        self.faults = Faults()
        self.rng = random.Random()
        self.reset()

    def reset(self) -> None:
        self.store.reset()
        self.epoch = _token()
        self._sequence = 0
        self._statement_lines = 0
        self.totals: dict[str, CounterpartyTotals] = {}
        self.credits = 0
        self.total_credited = 0
        self.duplicates = 0
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

    # -- accounts and idempotency keys ----------------------------------------------------

    def seed_accounts(self, rows: Iterable[tuple[str, str, str, str]]) -> int:
        return self.store.add_accounts(
            (bin_, number, fold_name(holder_name), status)
            for bin_, number, holder_name, status in rows
        )

    def account(self, bin_: str, account_number: str) -> Account | None:
        return self.store.account(bin_, account_number)

    def account_count(self) -> int:
        return self.store.account_count()

    def take_key(self, key: tuple[str, ...]) -> None:
        """Remember the idempotency key of a money-moving request that was taken."""
        self.store.take_key(_key_text(key))

    def key_taken(self, key: tuple[str, ...]) -> bool:
        return self.store.key_taken(_key_text(key))

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
        message_id: str | None = None,
    ) -> Intake:
        """Take a batch's items: new end-to-end ids become PENDING transfers; an id already
        received is accepted again and changes nothing. A resend under another batch (or to
        another counterparty) of an id that is not failed is counted as an attempted re-credit."""
        intake = Intake()
        seen: set[str] = set()
        totals = self._totals(counterparty)
        prefix = "BP" if channel == "vnpost" else "FT"
        batch = _key_text(batch_key)
        items = list(items)
        known = self.store.transfers(item.end_to_end_id for item in items)
        for item in items:
            e2e = item.end_to_end_id
            if e2e in seen:
                intake.rejected.append((e2e, "AM05"))
                continue
            seen.add(e2e)
            existing = known.get(e2e)
            if existing is not None:
                self._received_again(existing, batch, counterparty)
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
                batch_key=batch,
                reference=self._next_reference(prefix),
                received_at=now,
                account_number=item.account_number,
                account_bin=item.account_bin or counterparty,
                commune_code=item.commune_code,
                list_id=list_id,
                debtor_account=debtor_account,
                message_id=message_id,
                payment_info_id=item.payment_info_id,
            )
            self.store.add(transfer)
            intake.new.append(transfer)
            intake.accepted.append(e2e)
            totals.received += 1
        return intake

    def _received_again(self, existing: Transfer, batch_key: str, counterparty: str) -> None:
        existing.times_received += 1
        resent_elsewhere = existing.batch_key != batch_key or existing.counterparty != counterparty
        if resent_elsewhere and existing.status != "FAILED":
            existing.recredit_attempts += 1
            if existing.recredit_attempts == 1:
                self.duplicates += 1
        self.store.changed(existing)

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
        self._on_statement(transfer, now)

    def _on_statement(self, transfer: Transfer, now: datetime) -> None:
        """The transfer's line on its counterparty's statement of the day (at most one)."""
        self._statement_lines += 1
        transfer.statement_day = vietnam_date(now).toordinal()
        transfer.statement_line = self._statement_lines
        self.store.changed(transfer)

    def _accounts_of(self, transfers: list[Transfer]) -> dict[tuple[str, str], Account]:
        return self.store.accounts((t.account_bin or "", t.account_number or "") for t in transfers)

    def bank_verdict(
        self, transfer: Transfer, accounts: dict[tuple[str, str], Account]
    ) -> str | None:
        """The reason a transfer fails (its account, among `accounts`, decides, unless a
        permanent failure is injected), or None: it is paid."""
        if self.chance(self.faults.permanent_failure_rate):
            return self.rng.choice(PERMANENT_BANK_FAILURES)
        account = accounts.get((transfer.account_bin or "", transfer.account_number or ""))
        if account is None:
            return "AC01"
        return ACCOUNT_STATUS_FAILURES.get(account.status)

    def _fail(self, transfer: Transfer, reason: str) -> None:
        transfer.status = "FAILED"
        transfer.reason_code = reason
        self._totals(transfer.counterparty).failed += 1
        self.store.changed(transfer)

    def _settle(self, transfer: Transfer, now: datetime) -> None:
        transfer.status = "SETTLED"
        self._credit(transfer, now)
        self.store.changed(transfer)

    def settle_bank(self, transfers: Iterable[Transfer], now: datetime) -> list[Event]:
        """Decide each pending bank transfer."""
        events: list[Event] = []
        transfers = [t for t in transfers if t.status == "PENDING"]
        accounts = self._accounts_of(transfers)
        for transfer in transfers:
            reason = self.bank_verdict(transfer, accounts)
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
            self.store.save_file(message)
        if message.group_rejection is not None:
            for transfer in pending:
                self._fail(transfer, message.group_rejection)
            return StatusReport(self._next_reference("ST"), message, []), []
        rejected: list[tuple[str, str]] = []
        groups: dict[str | None, list[Transfer]] = {}
        accounts = self._accounts_of(pending)
        for transfer in pending:
            reason = self.bank_verdict(transfer, accounts)
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
        self.store.changed(transfer)
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
        transfer = self.store.transfer(end_to_end_id)
        if transfer is None or transfer.channel == "vnpost" or transfer.status != "SETTLED":
            return None
        transfer.status = "RETURNED"
        transfer.reason_code = reason_code
        totals = self._totals(transfer.counterparty)
        totals.returned += 1
        totals.total_returned += transfer.amount
        self.store.changed(transfer)
        return Event(f"{transfer.reference}-R", "transfer.returned", transfer, now, reason_code)

    def settle_cash(self, transfers: Iterable[Transfer], now: datetime) -> list[Event]:
        """The post office pays or returns each pending item (preset outcomes first)."""
        events: list[Event] = []
        faults = self.faults
        transfers = list(transfers)
        presets = self.store.cash_outcomes([t.end_to_end_id for t in transfers])
        for transfer in transfers:
            if transfer.status != "PENDING":
                continue
            outcome = presets.get(transfer.end_to_end_id)
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
            self.store.changed(transfer)
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
                self._on_statement(transfer, now)
                events.append(
                    Event(f"{transfer.reference}-R", "cash.returned", transfer, now, outcome)
                )
        return events

    def preset_cash_outcomes(self, outcomes: Iterable[tuple[str, str]]) -> None:
        """What the post office will do with these items (end-to-end id, outcome)."""
        self.store.preset_cash_outcomes(outcomes)

    # -- the file bank's files ------------------------------------------------------------

    def file(self, bin_: str, message_id: str) -> IsoMessage | None:
        return self.store.file(bin_, message_id)

    def record_file(
        self, message: IsoMessage, lines: Iterable[tuple[int, str, str, str | None]]
    ) -> None:
        """A file as the bank keeps it, with its transactions as written: (block, PmtInfId,
        end-to-end id, the reason it was refused at intake or None)."""
        self.store.record_file(message, lines)

    def file_lines(self, message: IsoMessage) -> list[FileLine]:
        """The file's transactions as written, with what became of each one taken."""
        return self.store.file_lines(message.bin, message.message_id)

    # -- views ----------------------------------------------------------------------------

    def transfer_for(self, counterparty: str, end_to_end_id: str) -> Transfer | None:
        transfer = self.store.transfer(end_to_end_id)
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

    def bank_statement(self, bin_: str, day: date) -> Statement:
        def pages() -> Iterator[tuple[list[dict[str, Any]], int]]:
            value_date = day.isoformat()
            for lines in self._statement_pages(bin_, day):
                entries = []
                total = 0
                for _, e2e, amount, reference, status, _, _ in lines:
                    if status not in ("RETURNED", "REVERSED"):
                        status = "CREDITED"
                        total += amount
                    entries.append(
                        {
                            "end_to_end_id": e2e,
                            "amount": amount,
                            "bank_reference": reference,
                            "value_date": value_date,
                            "status": status,
                        }
                    )
                yield entries, total

        return Statement({"bin": bin_, "date": day.isoformat()}, "total_credited", pages())

    def cash_statement(self, day: date) -> Statement:
        def pages() -> Iterator[tuple[list[dict[str, Any]], int]]:
            value_date = day.isoformat()
            for lines in self._statement_pages(VNPOST, day):
                entries = []
                total = 0
                for _, e2e, amount, reference, status, staff_id, commune_code in lines:
                    if status == "PAID":
                        total += amount
                    entries.append(
                        {
                            "end_to_end_id": e2e,
                            "amount": amount,
                            "receipt_number": reference,
                            "value_date": value_date,
                            "status": status,
                            "staff_id": staff_id,
                            "commune_code": commune_code,
                        }
                    )
                yield entries, total

        return Statement({"counterparty": VNPOST, "date": day.isoformat()}, "total_paid", pages())

    def _statement_pages(
        self, counterparty: str, day: date
    ) -> Iterator[list[tuple[int, str, int, str, str, str | None, str | None]]]:
        after = 0
        while lines := self.store.statement_lines(counterparty, day, after):
            yield lines
            after = lines[-1][0]

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
            "transfers": self.store.transfer_count,
            "by_counterparty": {cp: totals.as_dict() for cp, totals in sorted(self.totals.items())},
        }

    def ledger_entries(self, limit: int, offset: int) -> dict[str, Any]:
        return {
            "total": self.store.transfer_count,
            "offset": offset,
            "entries": [
                {
                    "end_to_end_id": e2e,
                    "amount": amount,
                    "counterparty": counterparty,
                    "status": status,
                    "reason_code": reason_code,
                    "credited_at": iso_utc(settled_at) if credited else None,
                    "times_received": times_received,
                    "recredit_attempts": recredit_attempts,
                }
                for (
                    e2e,
                    amount,
                    counterparty,
                    status,
                    reason_code,
                    settled_at,
                    credited,
                    times_received,
                    recredit_attempts,
                ) in self.store.ledger_page(limit, offset)
            ],
        }
