"""Where the money goes is decided on the day it is sent: a method (and a representative's
authorisation) pays only when it is valid on the payment date, and an attempt not yet sent takes
the beneficiary's current method when its batch is sent, or waits with the reason it cannot."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from services.payout.adapters.orm import batches, installments, payment_attempts, payment_methods
from services.payout.adapters.repository.cycles import hold_reason_sql, usable_sql
from services.payout.domain import model
from services.payout.domain.methods import method_usable
from services.payout.service_layer import submission
from services.payout.service_layer.cycles import start_cycle
from shared.events.contracts import Representative
from shared.uow import unit_of_work
from tests.payout.harness import (
    BIDV,
    VCB,
    PayoutStack,
    accounts,
    intake_events,
    method_event,
    method_row,
    payout_settings,
    people,
    release_cycle,
    verified,
)
from tests.support.waiting import wait_until

PAY_DAY = date(2031, 3, 5)


@pytest.fixture(params=["postgresql", "sqlite"])
async def stack(
    request, pg_database, kafka_bootstrap, tmp_path: Path, api_port, sandbox_server, sandbox
):
    if request.param == "postgresql":
        url, kafka = await pg_database("payout"), kafka_bootstrap
    else:
        url = kafka = None
    made = PayoutStack(
        payout_settings(url, kafka, tmp_path, api_port, sandbox_server.url), sandbox_server.url
    )
    await made.start(run_workers=False)
    made.tasks.append(asyncio.ensure_future(made.workers.run_verification(made.stop)))
    try:
        yield made
    finally:
        await made.close()


def _rep(n: int, valid_from: date | None, valid_until: date | None, **overrides) -> dict:
    return method_row(
        n,
        method=model.AUTHORISED_ACCOUNT,
        representative_name="TRAN THI B",
        representative_valid_from=valid_from,
        representative_valid_until=valid_until,
        **overrides,
    )


CASES = [
    method_row(1),
    method_row(2, status=model.METHOD_PENDING),
    method_row(3, status=model.METHOD_FAILED),
    method_row(4, status=model.METHOD_FLAGGED),
    method_row(
        5,
        method=model.CASH_POST_OFFICE,
        bank_bin=None,
        account_number=None,
        cash_reason="cannot transact",
    ),
    _rep(6, date(2031, 1, 1), date(2031, 3, 2)),  # ended on the 2nd
    _rep(7, date(2031, 1, 1), PAY_DAY),  # last day is the payment day
    _rep(8, PAY_DAY + timedelta(days=1), None),  # starts the day after
    _rep(9, PAY_DAY, None),
    _rep(10, None, None),
    _rep(11, date(2031, 1, 1), date(2031, 3, 31), status=model.METHOD_PENDING),
]


class TestUsableOnThePaymentDate:
    def test_representative_whose_authorisation_ended_before_the_payment_date_does_not_pay(self):
        assert method_usable(CASES[5], PAY_DAY) == (False, model.HOLD_AUTHORISATION)
        assert method_usable(CASES[6], PAY_DAY) == (True, None)
        assert method_usable(CASES[7], PAY_DAY) == (False, model.HOLD_AUTHORISATION)

    async def test_python_rule_and_sql_rule_agree(self, stack):
        async with stack.runtime.session_factory() as session, session.begin():
            await session.execute(payment_methods.insert(), CASES)
        ids = [row["beneficiary_id"] for row in CASES] + ["B-none"]
        probe = " UNION ALL ".join(f"SELECT '{b}' AS b" for b in ids)
        for day in (PAY_DAY, date(2031, 3, 2), date(2031, 3, 6), date(2030, 12, 31)):
            async with stack.runtime.session_factory() as session:
                rows = (
                    await session.execute(
                        text(
                            f"SELECT ids.b, CASE WHEN {usable_sql()} THEN 1 ELSE 0 END, "
                            f"CASE WHEN {usable_sql()} THEN NULL ELSE {hold_reason_sql()} END "
                            f"FROM ({probe}) ids LEFT JOIN payment_methods pm ON pm.beneficiary_id = ids.b"
                        ),
                        {"pay_date": day},
                    )
                ).all()
            by_id = {row["beneficiary_id"]: row for row in CASES}
            sql = {b: (bool(usable), reason) for b, usable, reason in rows}
            python = {b: method_usable(by_id.get(b), day) for b in ids}
            assert sql == python, day


def _rep_person(
    valid_until: date | None, *, valid_from: date = date(2030, 1, 1), bank_bin: str = VCB
):
    person = people(1, bank_bin=bank_bin)[0]
    person.method = model.AUTHORISED_ACCOUNT
    person.representative = Representative(
        full_name="Trần Thị Bình", valid_from=valid_from, valid_until=valid_until
    )
    return person


async def _start(stack: PayoutStack, period: str, now: datetime):
    async def transact(work):
        async with _uow(stack, now) as uow:
            return await work(uow)

    started = await start_cycle(transact, period, "tests", 50, chunk_size=100)
    await release_cycle(stack.runtime, period, now)
    return started


def _uow(stack: PayoutStack, now: datetime):
    return unit_of_work(stack.runtime.session_factory, stack.runtime.outbox, "tests", now=now)


async def _installments(stack: PayoutStack, period: str) -> dict[str, dict]:
    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(select(installments).where(installments.c.period == period))
        ).mappings()
        return {row["beneficiary_id"]: dict(row) for row in rows}


class TestCycleCreatedOnItsPaymentDate:
    async def test_authorisation_ended_before_the_payment_date_holds_the_installment(
        self, stack, sandbox
    ):
        ended = _rep_person(date(2031, 3, 2))
        not_yet = _rep_person(date(2031, 12, 31), valid_from=date(2031, 3, 10))
        valid = _rep_person(date(2031, 3, 5))
        persons = [ended, not_yet, valid]
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await verified(stack, persons)

        await _start(
            stack, "2031-03", datetime(2031, 3, 5, 3, 0, tzinfo=UTC)
        )  # 10:00 on the 5th in Vietnam
        made = await _installments(stack, "2031-03")
        assert made[ended.beneficiary_id]["state"] == model.ON_HOLD
        assert made[ended.beneficiary_id]["hold_reason"] == model.HOLD_AUTHORISATION
        assert made[not_yet.beneficiary_id]["state"] == model.ON_HOLD
        assert made[valid.beneficiary_id]["state"] == model.SCHEDULED


class TestAccountResolvedWhenSent:
    async def _cycle_waiting_to_be_sent(self, stack, sandbox, persons, period="2031-03"):
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await verified(stack, persons)
        await stack.start_cycle(period)  # batches made, nothing sent: the submission worker is off

    async def test_new_account_reaches_the_attempt_created_before_it(self, stack, sandbox):
        person = people(1, bank_bin=VCB)[0]
        await self._cycle_waiting_to_be_sent(stack, sandbox, [person])
        old_account = person.account_number
        person.account_number = "77" + old_account[2:]
        person.method_id += "-new"
        await sandbox.seed_accounts(accounts([person]))
        await sandbox.seed_accounts(
            [
                {
                    "bin": VCB,
                    "account_number": old_account,
                    "holder_name": person.name,
                    "status": "CLOSED",
                }
            ]
        )
        await stack.feed([method_event(person)])
        await verified(stack, [person])

        stack.start_workers()
        progress = await stack.wait_complete("2031-03")
        assert progress["by_state"]["SETTLED"]["count"] == 1
        async with stack.runtime.session_factory() as session:
            sent_to = (
                (await session.execute(select(payment_attempts.c.account_number))).scalars().all()
            )
        assert sent_to == [person.account_number]

    async def test_account_that_failed_verification_is_not_paid_and_the_installment_waits(
        self, stack, sandbox
    ):
        person = people(1, bank_bin=VCB)[0]
        await self._cycle_waiting_to_be_sent(stack, sandbox, [person])
        person.account_number = "66" + person.account_number[2:]
        person.method_id += "-new"
        await stack.feed([method_event(person)])  # the bank does not know this account
        await verified(stack, [person])

        stack.start_workers()

        async def held() -> dict | None:
            row = (await _installments(stack, "2031-03"))[person.beneficiary_id]
            return row if row["state"] == model.ON_HOLD else None

        row = await wait_until(held, timeout=30, message="installment held")
        assert row["hold_reason"] == model.HOLD_METHOD_FAILED
        await asyncio.sleep(0.5)
        assert (await sandbox.ledger())["credits"] == 0

    async def test_method_changed_to_cash_is_paid_at_the_post_office(self, stack, sandbox):
        person = people(1, bank_bin=BIDV)[0]
        await self._cycle_waiting_to_be_sent(stack, sandbox, [person])
        person.method = model.CASH_POST_OFFICE
        person.method_id += "-cash"
        await stack.feed([method_event(person)])

        stack.start_workers()
        progress = await stack.wait_complete("2031-03")
        assert progress["by_state"]["PAID_CASH"]["count"] == 1
        entries = (await sandbox.ledger_entries())["entries"]
        assert [e["counterparty"] for e in entries] == ["VNPOST"]

    async def test_authorisation_ended_before_the_send_date_is_not_paid(self, stack, sandbox):
        ended = _rep_person(date(2031, 3, 2))
        kept = people(1, bank_bin=VCB)[0]
        await sandbox.seed_accounts(accounts([ended, kept]))
        await stack.feed(
            [e for p in (ended, kept) for e in intake_events(p, start_period="2031-01")]
        )
        await verified(stack, [ended, kept])
        await _start(stack, "2031-03", datetime(2031, 3, 1, 3, 0, tzinfo=UTC))  # valid on the 1st
        assert (await _installments(stack, "2031-03"))[ended.beneficiary_id][
            "state"
        ] == model.SCHEDULED

        sent_on = datetime(2031, 3, 5, 3, 0, tzinfo=UTC)  # the batch goes out on the 5th
        async with _uow(stack, sent_on) as uow:
            claimed = await submission.claim_batch(uow, 30.0)
        assert claimed is not None and claimed.control_count == 2
        async with _uow(stack, sent_on) as uow:
            resolved = await submission.resolve_accounts(uow, claimed)
        assert resolved is not None
        assert resolved.control_count == 1 and resolved.control_sum == kept.amount
        async with _uow(stack, sent_on) as uow:
            items = await submission.batch_items(uow, claimed.batch_id)
            batch = (
                await uow.execute(select(batches).where(batches.c.batch_id == claimed.batch_id))
            ).one()
        assert [item["installment_id"] for item in items] == [
            (await _installments(stack, "2031-03"))[kept.beneficiary_id]["id"]
        ]
        assert (batch.control_count, batch.control_sum) == (1, kept.amount)
        row = (await _installments(stack, "2031-03"))[ended.beneficiary_id]
        assert (row["state"], row["hold_reason"]) == (model.ON_HOLD, model.HOLD_AUTHORISATION)

    async def test_batch_left_empty_is_not_sent(self, stack, sandbox):
        ended = _rep_person(date(2031, 3, 2))
        await sandbox.seed_accounts(accounts([ended]))
        await stack.feed(intake_events(ended, start_period="2031-01"))
        await verified(stack, [ended])
        await _start(stack, "2031-03", datetime(2031, 3, 1, 3, 0, tzinfo=UTC))
        sent_on = datetime(2031, 3, 5, 3, 0, tzinfo=UTC)
        async with _uow(stack, sent_on) as uow:
            claimed = await submission.claim_batch(uow, 30.0)
        async with _uow(stack, sent_on) as uow:
            assert await submission.resolve_accounts(uow, claimed) is None
        async with stack.runtime.session_factory() as session:
            state = (
                await session.execute(
                    select(batches.c.state).where(batches.c.batch_id == claimed.batch_id)
                )
            ).scalar_one()
        assert state == model.BATCH_CANCELLED
