"""An in-memory projection store, for the projector's pure logic (the SQL one is tested on the
real databases)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from services.reporting.domain.envelopes import ApprovedTotal, EnvelopeKey, EnvelopeSetEvent
from services.reporting.domain.model import (
    ClaimCell,
    ClaimFact,
    Counters,
    InstallmentFact,
    PaymentCell,
    PersonKey,
)


class FakeStore:
    def __init__(self, generation: int = 1) -> None:
        self.generation = generation
        self.installments: dict[str, InstallmentFact] = {}
        self.people: dict[PersonKey, PaymentCell | None] = {}
        self.claims: dict[str, ClaimFact] = {}
        self.payment_cube: dict[PaymentCell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.claim_cube: dict[ClaimCell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.envelopes: dict[EnvelopeKey, EnvelopeSetEvent] = {}
        self.approvals: dict[tuple[str, str], ApprovedTotal] = {}
        self.events = 0

    def current_generation(self) -> int:
        return self.generation

    def load_installments(self, ids: Sequence[str]) -> dict[str, InstallmentFact]:
        return {i: self.installments[i] for i in ids if i in self.installments}

    def save_installments(self, facts: Sequence[InstallmentFact]) -> None:
        for fact in facts:
            self.installments[fact.installment_id] = fact

    def lock_people(self, keys: Sequence[PersonKey]) -> dict[PersonKey, PaymentCell | None]:
        for key in keys:
            self.people.setdefault(key, None)
        return {k: self.people[k] for k in keys}

    def installments_of(self, keys: Sequence[PersonKey]) -> dict[PersonKey, list[InstallmentFact]]:
        out: dict[PersonKey, list[InstallmentFact]] = {}
        for fact in self.installments.values():
            if fact.person in keys:
                out.setdefault(fact.person, []).append(fact)
        return out

    def save_people(self, cells: dict[PersonKey, PaymentCell | None]) -> None:
        self.people.update(cells)

    def load_claims(self, ids: Sequence[str]) -> dict[str, ClaimFact]:
        return {i: self.claims[i] for i in ids if i in self.claims}

    def save_claims(self, facts: Sequence[ClaimFact]) -> None:
        for fact in facts:
            self.claims[fact.claim_id] = fact

    def add_to_payment_cube(self, deltas: dict[PaymentCell, Counters]) -> None:
        for cell, counters in deltas.items():
            for name, value in counters.items():
                self.payment_cube[cell][name] += value

    def add_to_claim_cube(self, deltas: dict[ClaimCell, Counters]) -> None:
        for cell, counters in deltas.items():
            for name, value in counters.items():
                self.claim_cube[cell][name] += value

    def save_envelopes(self, events: Sequence[EnvelopeSetEvent]) -> None:
        for event in events:
            current = self.envelopes.get(event.key)
            if current is None or event.at >= current.at:
                self.envelopes[event.key] = event

    def save_approvals(self, totals: Sequence[ApprovedTotal]) -> None:
        for total in totals:
            self.approvals.setdefault((total.approval_id, total.key.scheme), total)

    def record_progress(self, events: int, newest_event_at: datetime | None) -> None:
        self.events += events

    # --- reading back ------------------------------------------------------------------------

    def total(self, counter: str, **where: str) -> int:
        return sum(
            c[counter]
            for cell, c in self.payment_cube.items()
            if all(getattr(cell, k) == v for k, v in where.items())
        )

    def cube(self) -> dict[PaymentCell, dict[str, int]]:
        return {
            cell: {k: v for k, v in c.items() if v}
            for cell, c in self.payment_cube.items()
            if any(c.values())
        }
