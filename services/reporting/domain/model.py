"""What the read models remember and how one event changes it: pure functions, no framework.

Counting rules
- An installment is *paid* when a bank settled it or the post office confirmed the cash handover;
  it is paid *without cash* when settled to the person's own account or an authorised person's.
- A person counts once per period and scheme, in one cell (commune, list date, agency, channel):
  the cell of their best paid installment of that scheme in that period (cashless before cash,
  then the latest). Moving a person from cash to cashless moves them between cells, never adds.
- Amounts and installment counts are per installment, in the cell of the installment's latest
  state. Money is whole VND.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

SCHEMES = (
    "PENSION",
    "SI_ALLOWANCE",
    "UNEMPLOYMENT",
    "VOCATIONAL_TRAINING",
    "MERITORIOUS",
    "SOCIAL_PROTECTION",
    "OVERSEAS_LABOUR",
)
AGENCIES = ("BHXH", "DOLISA", "ESC")
CHANNELS = ("OWN_ACCOUNT", "AUTHORISED_ACCOUNT", "CASH_POST_OFFICE")
CASHLESS_CHANNELS = frozenset({"OWN_ACCOUNT", "AUTHORISED_ACCOUNT"})
CASH_CHANNEL = "CASH_POST_OFFICE"

# Installment states, from the payout events.
SCHEDULED = "SCHEDULED"
SUBMITTED = "SUBMITTED"
FAILED = "FAILED"  # transient: a retry follows
FAILED_PERMANENT = "FAILED_PERMANENT"
SETTLED = "SETTLED"
PAID_CASH = "PAID_CASH"
RETURNED = "RETURNED"
CANCELLED = "CANCELLED"
PAID_STATES = frozenset({SETTLED, PAID_CASH})
IN_FLIGHT = frozenset({SCHEDULED, SUBMITTED})

# Tie-break when two events of one installment carry the same time.
RANK = {
    SCHEDULED: 10,
    SUBMITTED: 20,
    FAILED: 25,
    FAILED_PERMANENT: 30,
    CANCELLED: 35,
    SETTLED: 40,
    RETURNED: 50,
    PAID_CASH: 60,
}

# Which state may follow which. A paid installment never goes back: settled money can only come
# back as a return, and a cash handover is final. A returned installment may be paid again.
_OPEN = frozenset(
    {SCHEDULED, SUBMITTED, FAILED, FAILED_PERMANENT, SETTLED, PAID_CASH, RETURNED, CANCELLED}
)
ALLOWED_AFTER: dict[str, frozenset[str]] = {
    SCHEDULED: _OPEN,
    SUBMITTED: _OPEN,
    FAILED: _OPEN,
    FAILED_PERMANENT: _OPEN,
    SETTLED: frozenset({RETURNED}),
    PAID_CASH: frozenset(),
    RETURNED: frozenset({SUBMITTED, FAILED, FAILED_PERMANENT, SETTLED, PAID_CASH, CANCELLED}),
    CANCELLED: frozenset({SETTLED, PAID_CASH}),
}

# Installment counters by state group (column prefixes in the payment cube).
GROUP_OF = {
    SCHEDULED: "pending",
    SUBMITTED: "pending",
    FAILED: "pending",
    FAILED_PERMANENT: "failed",
    SETTLED: "paid",
    PAID_CASH: "paid",
    RETURNED: "returned",
    CANCELLED: "cancelled",
}
STATE_GROUPS = ("paid", "pending", "failed", "returned", "cancelled")
PAYMENT_COUNTERS = (
    "people_paid",
    *(name for group in STATE_GROUPS for name in (f"{group}_count", f"{group}_amount")),
)
CLAIM_COUNTERS = ("received", "approved", "rejected")


@dataclass(frozen=True, slots=True)
class PaymentCell:
    period: str
    commune_code: str
    list_date: date
    scheme: str
    agency: str
    channel: str


@dataclass(frozen=True, slots=True)
class ClaimCell:
    period: str
    commune_code: str
    list_date: date
    scheme: str
    agency: str


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One payout event reduced to what the read models need."""

    installment_id: str
    beneficiary_id: str
    period: str
    amount: int
    scheme: str
    agency: str
    channel: str
    commune_code: str
    list_date: date
    state: str
    at: datetime


@dataclass(frozen=True, slots=True)
class InstallmentFact:
    installment_id: str
    beneficiary_id: str
    period: str
    amount: int
    scheme: str
    agency: str
    channel: str
    commune_code: str
    list_date: date
    state: str
    state_at: datetime

    @property
    def person(self) -> PersonKey:
        return PersonKey(self.period, self.beneficiary_id, self.scheme)

    @property
    def cell(self) -> PaymentCell:
        return PaymentCell(
            self.period, self.commune_code, self.list_date, self.scheme, self.agency, self.channel
        )

    @property
    def paid(self) -> bool:
        return self.state in PAID_STATES


@dataclass(frozen=True, slots=True, order=True)
class PersonKey:
    period: str
    beneficiary_id: str
    scheme: str


def accepts(current: InstallmentFact | None, event: PaymentEvent) -> bool:
    """Whether `event` moves the installment on. Older or already-superseded events change nothing."""
    if current is None:
        return True
    if event.state not in ALLOWED_AFTER[current.state]:
        return False
    if current.state in IN_FLIGHT and RANK[event.state] > RANK[current.state]:
        # Progress along the lifecycle whatever the clocks say: a bank's settlement time can be
        # earlier than the moment payout recorded the submission.
        return True
    if event.at != current.state_at:
        return event.at > current.state_at
    return RANK[event.state] > RANK[current.state]


def advance(current: InstallmentFact | None, event: PaymentEvent) -> InstallmentFact | None:
    """The installment after `event`; the same object when the event changes nothing."""
    if not accepts(current, event):
        return current
    fact = InstallmentFact(
        installment_id=event.installment_id,
        beneficiary_id=event.beneficiary_id,
        period=event.period,
        amount=event.amount,
        scheme=event.scheme,
        agency=event.agency,
        channel=event.channel,
        commune_code=event.commune_code,
        list_date=event.list_date,
        state=event.state,
        state_at=event.at,
    )
    if current is not None and (current.period, current.beneficiary_id, current.scheme) != (
        fact.period,
        fact.beneficiary_id,
        fact.scheme,
    ):
        # An installment belongs to one person, period and scheme for life; keep the first.
        fact = replace(
            fact,
            period=current.period,
            beneficiary_id=current.beneficiary_id,
            scheme=current.scheme,
        )
    return fact


def person_cell(facts: Iterable[InstallmentFact]) -> PaymentCell | None:
    """The one cell a person counts in for a period and scheme, or None if nothing was paid."""
    paid = [f for f in facts if f.paid]
    if not paid:
        return None
    best = max(paid, key=lambda f: (f.channel in CASHLESS_CHANNELS, f.state_at, f.installment_id))
    return best.cell


Counters = dict[str, int]


class Deltas:
    """Counter changes per cube cell, merged so each cell is written once."""

    def __init__(self) -> None:
        self.cells: dict[object, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, cell: object, counters: Mapping[str, int], sign: int = 1) -> None:
        target = self.cells[cell]
        for name, value in counters.items():
            target[name] += sign * value

    def nonzero(self) -> dict[object, dict[str, int]]:
        return {cell: dict(c) for cell, c in self.cells.items() if any(c.values())}


def installment_counters(fact: InstallmentFact) -> Counters:
    group = GROUP_OF[fact.state]
    return {f"{group}_count": 1, f"{group}_amount": fact.amount}


def move_installment(
    deltas: Deltas, before: InstallmentFact | None, after: InstallmentFact | None
) -> None:
    if before is not None:
        deltas.add(before.cell, installment_counters(before), -1)
    if after is not None:
        deltas.add(after.cell, installment_counters(after), +1)


def move_person(deltas: Deltas, before: PaymentCell | None, after: PaymentCell | None) -> None:
    if before == after:
        return
    if before is not None:
        deltas.add(before, {"people_paid": 1}, -1)
    if after is not None:
        deltas.add(after, {"people_paid": 1}, +1)


# --- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimReceivedEvent:
    claim_id: str
    period: str
    commune_code: str
    list_date: date
    scheme: str
    agency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ClaimDecidedEvent:
    claim_id: str
    period: str
    commune_code: str
    list_date: date
    scheme: str
    agency: str
    outcome: str  # APPROVED or REJECTED
    at: datetime


@dataclass(frozen=True, slots=True)
class ClaimFact:
    claim_id: str
    received: ClaimCell | None = None
    received_at: datetime | None = None
    decided: ClaimCell | None = None
    outcome: str | None = None
    decided_at: datetime | None = None


def receive_claim(current: ClaimFact | None, event: ClaimReceivedEvent) -> ClaimFact:
    """A claim is received once; a repeated receipt keeps the earliest."""
    fact = current or ClaimFact(event.claim_id)
    if fact.received_at is not None and fact.received_at <= event.at:
        return fact
    cell = ClaimCell(event.period, event.commune_code, event.list_date, event.scheme, event.agency)
    return replace(fact, received=cell, received_at=event.at)


def decide_claim(current: ClaimFact | None, event: ClaimDecidedEvent) -> ClaimFact:
    """The latest decision stands (an appeal may reverse one); an older one changes nothing."""
    fact = current or ClaimFact(event.claim_id)
    if fact.decided_at is not None and (fact.decided_at, fact.outcome or "") >= (
        event.at,
        event.outcome,
    ):
        return fact
    cell = ClaimCell(event.period, event.commune_code, event.list_date, event.scheme, event.agency)
    return replace(fact, decided=cell, outcome=event.outcome, decided_at=event.at)


def claim_counters(fact: ClaimFact | None) -> list[tuple[ClaimCell, Counters]]:
    if fact is None:
        return []
    out: list[tuple[ClaimCell, Counters]] = []
    if fact.received is not None:
        out.append((fact.received, {"received": 1}))
    if fact.decided is not None and fact.outcome is not None:
        out.append((fact.decided, {"approved" if fact.outcome == "APPROVED" else "rejected": 1}))
    return out


def move_claim(deltas: Deltas, before: ClaimFact | None, after: ClaimFact | None) -> None:
    for cell, counters in claim_counters(before):
        deltas.add(cell, counters, -1)
    for cell, counters in claim_counters(after):
        deltas.add(cell, counters, +1)
