"""Applies a batch of events to the read models in one go: load the touched facts, move them on in
memory, then write the facts and the merged counter changes. The caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.reporting.domain.envelopes import (
    ApprovedTotal,
    EnvelopeSetEvent,
    distinct_totals,
    latest_envelopes,
)
from services.reporting.domain.model import (
    ClaimCell,
    ClaimDecidedEvent,
    ClaimFact,
    ClaimReceivedEvent,
    Counters,
    Deltas,
    InstallmentFact,
    PaymentCell,
    PaymentEvent,
    PersonKey,
    advance,
    decide_claim,
    move_claim,
    move_installment,
    move_person,
    person_cell,
    receive_claim,
)


class Superseded(BaseException):
    """A rebuild replaced this projection generation: stop applying, commit nothing.

    A BaseException on purpose, so the consumer runner's per-event retries and dead-lettering (which
    catch Exception) let it through to the projection loop, which switches generation."""


class ProjectionStore(Protocol):
    def current_generation(self) -> int: ...
    def load_installments(self, ids: Sequence[str]) -> dict[str, InstallmentFact]: ...
    def save_installments(self, facts: Sequence[InstallmentFact]) -> None: ...
    def lock_people(self, keys: Sequence[PersonKey]) -> dict[PersonKey, PaymentCell | None]: ...
    def installments_of(
        self, keys: Sequence[PersonKey]
    ) -> dict[PersonKey, list[InstallmentFact]]: ...
    def save_people(self, cells: dict[PersonKey, PaymentCell | None]) -> None: ...
    def load_claims(self, ids: Sequence[str]) -> dict[str, ClaimFact]: ...
    def save_claims(self, facts: Sequence[ClaimFact]) -> None: ...
    def add_to_payment_cube(self, deltas: dict[PaymentCell, Counters]) -> None: ...
    def add_to_claim_cube(self, deltas: dict[ClaimCell, Counters]) -> None: ...
    def save_envelopes(self, events: Sequence[EnvelopeSetEvent]) -> None: ...
    def save_approvals(self, totals: Sequence[ApprovedTotal]) -> None: ...
    def record_progress(self, events: int, newest_event_at: datetime | None) -> None: ...


ClaimEvent = ClaimReceivedEvent | ClaimDecidedEvent


@dataclass
class Batch:
    """The events of one consumer transaction, in delivery order."""

    generation: int
    payments: list[PaymentEvent] = field(default_factory=list)
    claims: list[ClaimEvent] = field(default_factory=list)
    envelopes: list[EnvelopeSetEvent] = field(default_factory=list)
    approvals: list[ApprovedTotal] = field(default_factory=list)
    events: int = 0
    newest_event_at: datetime | None = None

    def note(self, event_time: datetime) -> None:
        self.events += 1
        if self.newest_event_at is None or event_time > self.newest_event_at:
            self.newest_event_at = event_time


def apply_batch(store: ProjectionStore, batch: Batch) -> None:
    if store.current_generation() != batch.generation:
        raise Superseded(f"projection generation {batch.generation} was replaced by a rebuild")
    if batch.payments:
        _apply_payments(store, batch.payments)
    if batch.claims:
        _apply_claims(store, batch.claims)
    if batch.envelopes:
        store.save_envelopes(list(latest_envelopes(batch.envelopes).values()))
    if batch.approvals:
        store.save_approvals(list(distinct_totals(batch.approvals).values()))
    store.record_progress(batch.events, batch.newest_event_at)


def _apply_payments(store: ProjectionStore, events: Iterable[PaymentEvent]) -> None:
    events = list(events)
    before = store.load_installments(sorted({e.installment_id for e in events}))
    after: dict[str, InstallmentFact | None] = dict(before)
    for event in events:
        after[event.installment_id] = advance(after.get(event.installment_id), event)
    changed = [f for i, f in after.items() if f is not None and f != before.get(i)]
    if not changed:
        return
    deltas = Deltas()
    for fact in changed:
        move_installment(deltas, before.get(fact.installment_id), fact)
    store.save_installments(changed)

    # A person's cell is their best paid installment: only a fact that is or was paid can move
    # it. The others (scheduled, submitted: most of a cycle's events) leave their people alone.
    people = sorted({f.person for f in changed if f.paid or _was_paid(before, f)})
    if people:
        counted = store.lock_people(people)
        siblings = store.installments_of(people)
        moved: dict[PersonKey, PaymentCell | None] = {}
        for person in people:
            cell = person_cell(siblings.get(person, []))
            if cell != counted.get(person):
                move_person(deltas, counted.get(person), cell)
                moved[person] = cell
        if moved:
            store.save_people(moved)
    cells = deltas.nonzero()
    if cells:
        store.add_to_payment_cube(cells)  # type: ignore[arg-type]


def _was_paid(before: dict[str, InstallmentFact], fact: InstallmentFact) -> bool:
    previous = before.get(fact.installment_id)
    return previous is not None and previous.paid


def _apply_claims(store: ProjectionStore, events: Iterable[ClaimEvent]) -> None:
    events = list(events)
    before = store.load_claims(sorted({e.claim_id for e in events}))
    after: dict[str, ClaimFact] = dict(before)
    for event in events:
        current = after.get(event.claim_id)
        after[event.claim_id] = (
            receive_claim(current, event)
            if isinstance(event, ClaimReceivedEvent)
            else decide_claim(current, event)
        )
    changed = [f for i, f in after.items() if f != before.get(i)]
    if not changed:
        return
    deltas = Deltas()
    for fact in changed:
        move_claim(deltas, before.get(fact.claim_id), fact)
    store.save_claims(changed)
    cells = deltas.nonzero()
    if cells:
        store.add_to_claim_cube(cells)  # type: ignore[arg-type]
