"""Funds envelopes: each agency's budget for a scheme and period, what was approved against it and
what was paid, as the dashboard shows them. Pure functions, no I/O.

- The envelope is the latest `EnvelopeSet` of its (period, agency, scheme): a newer one replaces
  it, an older one (replayed or re-published) changes nothing.
- Approved is the sum of the `CycleApproved` totals of the scheme, each approval counted once
  whatever how often its event arrives (keyed by approval id and scheme).
- Paid is what the payment read models count as paid (settled or handed over in cash).
- A line about fewer than THRESHOLD installments or people shows only its envelope to a reader
  without the detail scope, as every other small cell.
- Used is what was approved: the envelope is spent when a checker approves, before the money
  leaves, as payout's envelope check counts it. Remaining = envelope − approved (negative when
  over); the shares are rounded only for display.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from services.reporting.domain.disclosure import THRESHOLD
from services.reporting.domain.figures import percent


@dataclass(frozen=True, slots=True, order=True)
class EnvelopeKey:
    period: str
    agency: str
    scheme: str


@dataclass(frozen=True, slots=True)
class EnvelopeSetEvent:
    key: EnvelopeKey
    amount: int
    at: datetime


@dataclass(frozen=True, slots=True)
class ApprovedTotal:
    """One scheme's line of one approval."""

    approval_id: str
    key: EnvelopeKey
    count: int
    amount: int
    envelope: int | None  # the envelope payout checked against, when it had one
    at: datetime


def latest_envelopes(events: Iterable[EnvelopeSetEvent]) -> dict[EnvelopeKey, EnvelopeSetEvent]:
    """The newest envelope per key among `events`; on equal times the later delivered wins."""
    out: dict[EnvelopeKey, EnvelopeSetEvent] = {}
    for event in events:
        current = out.get(event.key)
        if current is None or event.at >= current.at:
            out[event.key] = event
    return out


def distinct_totals(totals: Iterable[ApprovedTotal]) -> dict[tuple[str, str], ApprovedTotal]:
    """One line per (approval id, scheme): a repeated approval is the same approval."""
    out: dict[tuple[str, str], ApprovedTotal] = {}
    for total in totals:
        out.setdefault((total.approval_id, total.key.scheme), total)
    return out


@dataclass(frozen=True, slots=True)
class EnvelopeUse:
    key: EnvelopeKey
    envelope: int | None
    approved: int
    approved_count: int
    approvals: int
    paid: int
    people_paid: int = 0

    @property
    def small(self) -> bool:
        """Its approved installments or paid people are too few to publish to every reader (the
        amount would be one person's benefit); the envelope itself is a budget and stays shown."""
        return 0 < max(self.approved_count, self.people_paid) < THRESHOLD

    @property
    def remaining(self) -> int | None:
        return None if self.envelope is None else self.envelope - self.approved

    @property
    def over(self) -> bool:
        return self.envelope is not None and self.approved > self.envelope

    @property
    def used_share(self) -> Fraction | None:
        return Fraction(self.approved, self.envelope) if self.envelope else None

    @property
    def paid_share(self) -> Fraction | None:
        return Fraction(self.paid, self.envelope) if self.envelope else None

    def as_dict(self, hide_small: bool = False) -> dict[str, object]:
        if hide_small and self.small:
            return {
                "period": self.key.period,
                "agency": self.key.agency,
                "scheme": self.key.scheme,
                "envelope": self.envelope,
                "suppressed": True,
                **dict.fromkeys(
                    (
                        "approved",
                        "approved_count",
                        "approvals",
                        "paid",
                        "remaining",
                        "over",
                        "percent_used",
                        "percent_paid",
                    )
                ),
            }
        return {
            "period": self.key.period,
            "agency": self.key.agency,
            "scheme": self.key.scheme,
            "envelope": self.envelope,
            "suppressed": False,
            "approved": self.approved,
            "approved_count": self.approved_count,
            "approvals": self.approvals,
            "paid": self.paid,
            "remaining": self.remaining,
            "over": self.over,
            "percent_used": percent(self.used_share),
            "percent_paid": percent(self.paid_share),
        }


@dataclass(frozen=True, slots=True)
class Approved:
    amount: int
    count: int
    approvals: int
    envelope: int | None  # the latest approval's envelope, for a budget loaded before we listened


def summarise(totals: Iterable[ApprovedTotal]) -> dict[EnvelopeKey, Approved]:
    """Approved amount, count and approvals per key; the envelope of the newest approval."""
    lines = sorted(distinct_totals(totals).values(), key=lambda t: (t.at, t.approval_id))
    out: dict[EnvelopeKey, Approved] = {}
    for line in lines:
        before = out.get(line.key, Approved(0, 0, 0, None))
        out[line.key] = Approved(
            before.amount + line.amount,
            before.count + line.count,
            before.approvals + 1,
            line.envelope if line.envelope is not None else before.envelope,
        )
    return out


def envelope_use(
    envelopes: Mapping[EnvelopeKey, int],
    approved: Mapping[EnvelopeKey, Approved],
    paid: Mapping[EnvelopeKey, tuple[int, int]],
) -> list[EnvelopeUse]:
    """A line per key that has an envelope or an approval (payments outside any approval are the
    payment figures' business, not the envelope's), in key order."""
    keys = sorted(set(envelopes) | set(approved))
    out = []
    for key in keys:
        a = approved.get(key, Approved(0, 0, 0, None))
        envelope = envelopes.get(key, a.envelope)
        amount, people = paid.get(key, (0, 0))
        out.append(EnvelopeUse(key, envelope, a.amount, a.count, a.approvals, amount, people))
    return out
