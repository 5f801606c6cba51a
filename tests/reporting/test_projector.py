"""The projector on an in-memory store: counters move only when a person's or an installment's
state changes, whatever the order or repetition of events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.reporting.domain.model import (
    FAILED_PERMANENT,
    PAID_CASH,
    RETURNED,
    SCHEDULED,
    SETTLED,
    SUBMITTED,
    ClaimDecidedEvent,
    ClaimReceivedEvent,
    PaymentEvent,
)
from services.reporting.service_layer.projector import Batch, Superseded, apply_batch
from shared.admin_units import LIST_2023
from tests.reporting.support.fake_store import FakeStore

T0 = datetime(2023, 5, 10, 3, 0, tzinfo=UTC)


def pay(
    installment: str,
    state: str,
    minute: int,
    *,
    beneficiary: str = "b1",
    channel: str = "OWN_ACCOUNT",
    amount: int = 2_500_000,
    scheme: str = "PENSION",
    period: str = "2023-05",
    commune: str = "08707",
) -> PaymentEvent:
    return PaymentEvent(
        installment,
        beneficiary,
        period,
        amount,
        scheme,
        "BHXH",
        channel,
        commune,
        LIST_2023,
        state,
        T0 + timedelta(minutes=minute),
    )


def apply(store: FakeStore, *events) -> None:
    batch = Batch(store.generation)
    for event in events:
        (batch.payments if isinstance(event, PaymentEvent) else batch.claims).append(event)
        batch.note(event.at)
    apply_batch(store, batch)


class TestIdempotence:
    def test_the_same_events_twice_change_nothing(self):
        store = FakeStore()
        events = [
            pay("i1", SCHEDULED, 0),
            pay("i1", SUBMITTED, 1),
            pay("i1", SETTLED, 2),
            pay("i2", PAID_CASH, 3, beneficiary="b2", channel="CASH_POST_OFFICE"),
        ]
        apply(store, *events)
        first = store.cube()
        apply(store, *events)
        apply(store, *reversed(events))
        assert store.cube() == first
        assert store.total("people_paid") == 2
        assert store.total("paid_amount") == 5_000_000

    def test_one_event_per_batch_or_all_in_one_give_the_same_cube(self):
        events = [
            pay("i1", SCHEDULED, 0),
            pay("i1", SUBMITTED, 1),
            pay("i1", FAILED_PERMANENT, 2),
            pay("i1", PAID_CASH, 5, channel="CASH_POST_OFFICE"),
            pay("i2", SETTLED, 3, beneficiary="b2"),
        ]
        together, apart = FakeStore(), FakeStore()
        apply(together, *events)
        for event in events:
            apply(apart, event)
        assert together.cube() == apart.cube()


class TestPeople:
    def test_cash_then_cashless_moves_the_person_and_never_double_counts(self):
        store = FakeStore()
        apply(store, pay("i1", PAID_CASH, 1, channel="CASH_POST_OFFICE"))
        assert store.total("people_paid", channel="CASH_POST_OFFICE") == 1
        apply(
            store, pay("i2", SETTLED, 2, channel="OWN_ACCOUNT")
        )  # a second installment, same month
        assert store.total("people_paid") == 1
        assert store.total("people_paid", channel="OWN_ACCOUNT") == 1
        assert store.total("people_paid", channel="CASH_POST_OFFICE") == 0
        assert store.total("paid_count") == 2
        assert store.total("paid_amount") == 5_000_000

    def test_a_person_counts_once_per_scheme_and_period(self):
        store = FakeStore()
        apply(
            store,
            pay("i1", SETTLED, 1),
            pay("i2", SETTLED, 2),
            pay("i3", SETTLED, 3, scheme="SI_ALLOWANCE"),
            pay("i4", SETTLED, 4, period="2023-06"),
        )
        assert store.total("people_paid") == 3
        assert store.total("people_paid", period="2023-05", scheme="PENSION") == 1

    def test_a_return_removes_the_person_and_the_amount(self):
        store = FakeStore()
        apply(store, pay("i1", SETTLED, 1))
        apply(store, pay("i1", RETURNED, 2))
        assert store.total("people_paid") == 0
        assert store.total("paid_amount") == 0
        assert store.total("returned_amount") == 2_500_000

    def test_late_out_of_order_events_do_not_double_count(self):
        store = FakeStore()
        apply(store, pay("i1", SETTLED, 2))
        apply(store, pay("i1", SUBMITTED, 1))
        apply(store, pay("i1", SCHEDULED, 0))
        assert store.cube() == {
            next(iter(store.cube())): {"people_paid": 1, "paid_count": 1, "paid_amount": 2_500_000}
        }

    def test_pending_then_paid_leaves_no_pending_behind(self):
        store = FakeStore()
        apply(store, pay("i1", SCHEDULED, 0))
        assert store.total("pending_count") == 1
        apply(store, pay("i1", SETTLED, 2))
        assert store.total("pending_count") == 0
        assert store.total("paid_count") == 1


class TestClaims:
    def test_a_claim_counts_once_received_and_once_decided(self):
        store = FakeStore()
        received = ClaimReceivedEvent(
            "c1", "2022-03", "08707", LIST_2023, "UNEMPLOYMENT", "ESC", T0
        )
        decided = ClaimDecidedEvent(
            "c1",
            "2022-04",
            "08707",
            LIST_2023,
            "UNEMPLOYMENT",
            "ESC",
            "APPROVED",
            T0 + timedelta(days=20),
        )
        apply(store, received, decided)
        apply(store, received, decided)
        by_period = {
            cell.period: {k: v for k, v in c.items() if v} for cell, c in store.claim_cube.items()
        }
        assert by_period == {"2022-03": {"received": 1}, "2022-04": {"approved": 1}}

    def test_a_reversed_decision_moves_between_counters(self):
        store = FakeStore()
        apply(
            store,
            ClaimDecidedEvent(
                "c1", "2022-04", "08707", LIST_2023, "UNEMPLOYMENT", "ESC", "REJECTED", T0
            ),
        )
        apply(
            store,
            ClaimDecidedEvent(
                "c1",
                "2022-05",
                "08707",
                LIST_2023,
                "UNEMPLOYMENT",
                "ESC",
                "APPROVED",
                T0 + timedelta(days=30),
            ),
        )
        totals = {
            name: sum(c[name] for c in store.claim_cube.values())
            for name in ("approved", "rejected")
        }
        assert totals == {"approved": 1, "rejected": 0}


class TestGenerations:
    def test_a_replaced_generation_applies_nothing(self):
        store = FakeStore(generation=2)
        batch = Batch(generation=1, payments=[pay("i1", SETTLED, 1)])
        with pytest.raises(Superseded):
            apply_batch(store, batch)
        assert store.installments == {}


class TestPeopleLeftAlone:
    """Only a fact that is or was paid can move its person's cell: a batch of installments
    scheduled and submitted neither locks nor reads anyone's people rows (two thirds of a cycle's
    events, and the heaviest statements of a batch)."""

    class Counting(FakeStore):
        def __init__(self) -> None:
            super().__init__()
            self.people_touched: list[object] = []

        def lock_people(self, keys):
            self.people_touched.extend(keys)
            return super().lock_people(keys)

        def installments_of(self, keys):
            self.people_touched.extend(keys)
            return super().installments_of(keys)

    def test_scheduled_and_submitted_touch_no_person(self):
        store = self.Counting()
        apply(store, pay("i1", SCHEDULED, 0), pay("i2", SCHEDULED, 0, beneficiary="b2"))
        apply(store, pay("i1", SUBMITTED, 1))
        assert store.people_touched == []
        assert store.total("people_paid") == 0

    def test_a_payment_and_its_return_move_the_person(self):
        store = self.Counting()
        apply(store, pay("i1", SUBMITTED, 1))
        apply(store, pay("i1", SETTLED, 2))
        assert store.people_touched and store.total("people_paid") == 1
        apply(store, pay("i1", RETURNED, 3))
        assert store.total("people_paid") == 0
