"""Property tests of the payment state machine: whatever callbacks arrive (settled, failed,
returned, paid in cash; duplicated, reordered, replayed event ids, fresh event ids for the same
news, wrong amounts, another bank naming our payment, the superseded bank attempt after a cash
fallback), an installment is settled at most once, a final state never goes back (the only move
out of one is a settlement the bank sends back: SETTLED -> RETURNED), and the money counted as
paid is the installment's amount, once, or nothing.

The rule lives in the pure `decide`; it is applied by `record_callback` in the service layer,
which is driven here against a real database: SQLite (the embedded default) with many examples,
PostgreSQL with fewer."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.payout.adapters.banks.base import describe
from services.payout.adapters.orm import (
    beneficiaries,
    cycles,
    installments,
    metadata,
    outbox,
    payment_attempts,
)
from services.payout.adapters.repository import reads
from services.payout.bootstrap import MIGRATIONS
from services.payout.domain import model
from services.payout.domain.model import Outcome, PaymentView, decide
from services.payout.service_layer.outcomes import OutcomePolicy, record_callback
from shared.db import make_engine, make_session_factory
from shared.migrations import upgrade_to_head_async
from shared.outbox import Outbox
from shared.uow import unit_of_work

BANK = "970436"
OTHER_BANK = "970418"
AMOUNT = 2_345_678
MONEY_MOVED = ("payment-settled", "payment-paid-in-cash")
STATUSES = ("SETTLED", "FAILED", "RETURNED", "PAID_CASH")
REASONS = (None, "AC04", "AM04", "MS03", "BE01", "NOT_FOUND", "REFUSED", "XX99")
_sequence = itertools.count(1)

# -- the pure decision --------------------------------------------------------------------------

views = st.builds(
    PaymentView,
    installment_state=st.sampled_from(model.INSTALLMENT_STATES),
    installment_amount=st.integers(1, 10**9),
    current_attempt_no=st.integers(1, 2),
    attempt_no=st.integers(1, 2),
    attempt_counterparty=st.sampled_from([BANK, model.VNPOST]),
)


@st.composite
def outcomes_for(draw, view: PaymentView) -> Outcome:
    amount = draw(st.one_of(st.none(), st.just(view.installment_amount), st.integers(-10, 10**10)))
    return Outcome(
        end_to_end_id=model.end_to_end_id(1, view.attempt_no),
        status=draw(st.sampled_from(STATUSES)),
        amount=amount,
        reason_code=draw(st.sampled_from(REASONS)),
        bank_reference=None,
        occurred_at=datetime(2031, 4, 6, tzinfo=UTC),
        event_id="E1",
    )


class TestDecide:
    @settings(max_examples=2000, deadline=None)
    @given(
        data=st.data(), view=views, counterparty=st.sampled_from([BANK, OTHER_BANK, model.VNPOST])
    )
    def test_final_states_never_go_back_and_money_moves_only_for_the_right_amount(
        self, data, view, counterparty
    ):
        outcome = data.draw(outcomes_for(view))
        decision = decide(view, outcome, counterparty)
        if decision.verdict != "APPLY":
            assert decision.new_state is None
            return
        assert counterparty == view.attempt_counterparty
        assert view.attempt_no == view.current_attempt_no
        if view.installment_state in model.FINAL_STATES:
            assert (view.installment_state, decision.new_state) == (model.SETTLED, model.RETURNED)
        else:
            assert view.installment_state in model.OPEN_STATES
        if decision.new_state in (model.SETTLED, model.PAID_CASH):
            assert outcome.amount is None or outcome.amount == view.installment_amount


# -- the service layer on a real database --------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    attempt: int  # 1: the bank transfer; 2: the cash payment a fallback makes
    status: str
    amount_delta: int
    reason: str | None
    event: int  # few distinct values: event ids repeat (replays)
    from_other_bank: bool


callbacks = st.builds(
    Callback,
    attempt=st.sampled_from([1, 1, 2]),
    status=st.sampled_from(STATUSES),
    amount_delta=st.sampled_from([0, 0, 0, 1, -AMOUNT]),
    reason=st.sampled_from(REASONS),
    event=st.integers(0, 5),
    from_other_bank=st.sampled_from([False, False, False, True]),
)
deliveries = st.lists(st.lists(callbacks, min_size=1, max_size=4), min_size=1, max_size=8)


@dataclass
class Payout:
    engine: AsyncEngine
    outbox: Outbox

    @classmethod
    async def open(cls, url: str) -> Payout:
        await upgrade_to_head_async(MIGRATIONS, url)
        return cls(make_engine(url), Outbox(metadata.tables["outbox"], "payout", notify=False))

    async def submitted_installment(self) -> tuple[int, str]:
        """A fresh cycle with one installment whose bank transfer is out (SUBMITTED)."""
        n = next(_sequence)
        tag = uuid.uuid4().hex[:8]
        now = datetime.now(UTC)
        period = f"{2100 + n // 12:04d}-{n % 12 + 1:02d}"
        async with make_session_factory(self.engine)() as session, session.begin():
            cycle_id = (
                await session.execute(
                    insert(cycles)
                    .values(period=period, state="OPEN", started_at=now, started_by="tests")
                    .returning(cycles.c.id)
                )
            ).scalar_one()
            await session.execute(
                insert(beneficiaries).values(
                    beneficiary_id=f"BEN-{tag}",
                    full_name="Nguyễn Văn Ánh",
                    commune_code="09154",
                    commune_list_date=date(2023, 5, 7),
                    registered_at=now,
                    updated_at=now,
                )
            )
            installment_id = (
                await session.execute(
                    insert(installments)
                    .values(
                        cycle_id=cycle_id,
                        entitlement_id=f"ENT-{tag}",
                        beneficiary_id=f"BEN-{tag}",
                        period=period,
                        amount=AMOUNT,
                        scheme="PENSION",
                        agency="BHXH",
                        commune_code="09154",
                        commune_list_date=date(2023, 5, 7),
                        channel=model.OWN_ACCOUNT,
                        counterparty=BANK,
                        method_id=f"PM-{tag}",
                        state=model.SUBMITTED,
                        attempt_no=1,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(installments.c.id)
                )
            ).scalar_one()
            await session.execute(
                insert(payment_attempts).values(
                    installment_id=installment_id,
                    attempt_no=1,
                    end_to_end_id=model.end_to_end_id(installment_id, 1),
                    cycle_id=cycle_id,
                    channel=model.OWN_ACCOUNT,
                    counterparty=BANK,
                    amount=AMOUNT,
                    account_number="0123456789",
                    account_name="NGUYEN VAN ANH",
                    remittance_info="BHXH PENSION",
                    batch_id=f"B-{tag}",
                    state=model.SUBMITTED,
                    created_at=now,
                    submitted_at=now,
                )
            )
        return installment_id, period

    async def deliver(
        self, installment_id: int, delivery: list[Callback], policy: OutcomePolicy, number: int
    ) -> None:
        occurred = datetime(2031, 4, 6, 3, tzinfo=UTC) + timedelta(minutes=number)
        by_sender: dict[str, list[Outcome]] = {}
        for c in delivery:
            sender = OTHER_BANK if c.from_other_bank else (BANK if c.attempt == 1 else model.VNPOST)
            by_sender.setdefault(sender, []).append(
                Outcome(
                    end_to_end_id=model.end_to_end_id(installment_id, c.attempt),
                    status=c.status,  # type: ignore[arg-type]
                    amount=AMOUNT + c.amount_delta,
                    reason_code=c.reason,
                    bank_reference=f"REF-{c.event}",
                    occurred_at=occurred,
                    paid_on=occurred.date() if c.status == "PAID_CASH" else None,
                    event_id=f"EVT-{installment_id}-{c.event}",
                )
            )
        for (
            sender,
            outcomes,
        ) in by_sender.items():  # one transaction per delivery, as the webhook does
            async with unit_of_work(make_session_factory(self.engine), self.outbox, sender) as uow:
                await record_callback(
                    uow, sender, f"DLV-{installment_id}-{number}", outcomes, policy
                )

    async def observe(
        self, installment_id: int, period: str
    ) -> tuple[str, int, list[tuple[str, int]], int]:
        """State, attempts, the money-moving events (type, amount) and the ledger's settled sum."""
        async with make_session_factory(self.engine)() as session:
            state = (
                await session.execute(
                    select(installments.c.state).where(installments.c.id == installment_id)
                )
            ).scalar_one()
            attempts = (
                await session.execute(
                    select(func.count())
                    .select_from(payment_attempts)
                    .where(payment_attempts.c.installment_id == installment_id)
                )
            ).scalar_one()
            rows = (
                await session.execute(
                    select(outbox.c.event_type, outbox.c.payload)
                    .where(outbox.c.key == str(installment_id))
                    .order_by(outbox.c.id)
                )
            ).all()
            ledger = await reads.ledger(session, period)
        moved = []
        for event_type, payload in rows:
            name = event_type.split(".")[3]
            if name in MONEY_MOVED:
                moved.append((name, int(orjson.loads(payload)["data"]["amount"])))
        return state, int(attempts), moved, sum(r["settled_sum"] for r in ledger)


async def check_any_sequence(payout: Payout, sequence: list[list[Callback]], fallback: str) -> None:
    policy = OutcomePolicy(describe=describe, fallback=fallback)
    installment_id, period = await payout.submitted_installment()
    previous = model.SUBMITTED
    history = [previous]
    for number, delivery in enumerate(
        sequence + sequence[:2]
    ):  # the first deliveries come again at the end
        await payout.deliver(installment_id, delivery, policy, number)
        state, attempts, moved, settled_sum = await payout.observe(installment_id, period)
        history.append(state)
        if previous in model.FINAL_STATES:
            assert state == previous or (previous, state) == (model.SETTLED, model.RETURNED), (
                history
            )
        assert len(moved) <= 1, (history, moved)  # never two settlements
        assert all(amount == AMOUNT for _, amount in moved), moved
        if state in (model.SETTLED, model.PAID_CASH):
            assert len(moved) == 1, (history, moved)
            assert settled_sum == AMOUNT
        else:
            assert settled_sum == 0, (history, settled_sum)
        assert (
            attempts == (1 if fallback == "none" else attempts) and attempts <= 2
        )  # one cash attempt at most
        previous = state


def run_property(url: str, examples: int) -> None:
    """Hypothesis drives the service layer on its own loop, in the calling thread."""
    with asyncio.Runner() as runner:
        payout = runner.run(Payout.open(url))
        try:

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(sequence=deliveries, fallback=st.sampled_from(["none", "cash"]))
            def any_sequence(sequence: list[list[Callback]], fallback: str) -> None:
                runner.run(check_any_sequence(payout, sequence, fallback))

            any_sequence()
        finally:
            runner.run(payout.engine.dispose())


class TestCallbacksOnTheEmbeddedDefault:
    async def test_any_sequence_of_callbacks_settles_at_most_once(self, tmp_path: Path):
        await asyncio.to_thread(run_property, f"sqlite+aiosqlite:///{tmp_path / 'payout.db'}", 60)


class TestCallbacksOnPostgres:
    async def test_any_sequence_of_callbacks_settles_at_most_once(self, pg_database):
        await asyncio.to_thread(run_property, await pg_database("state_machine"), 15)
