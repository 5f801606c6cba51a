"""Identity revalidation's holds in payout, on PostgreSQL + Kafka with the bank sandbox: the
people intake names are held in batches still awaiting approval (their attempts cancelled, the
batches' control totals recounted, reporting told they are not to be paid), never in a batch
already approved; a hold waits for the agency and no payment method lifts it."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from services.payout.adapters.identity_tables import identity_holds
from services.payout.adapters.identity_tables import revalidation_parts as parts_table
from services.payout.adapters.orm import batches, installments, outbox, payment_attempts
from services.payout.service_layer.revalidation import apply_identity_holds, revalidation_done
from shared.uow import UnitOfWork, unit_of_work
from tests.payout.harness import accounts, intake_events, method_event, people, verified
from tests.support.revalidation import deliver_revalidation, revalidation_parts
from tests.support.waiting import wait_until

CANCELLED_TYPE = "vn.benefits.payout.installment-cancelled.v1"


async def rows(stack, query) -> list:
    async with stack.runtime.session_factory() as session:
        return list((await session.execute(query)).mappings().all())


async def installment_of(stack, person, period):
    [row] = await rows(
        stack,
        select(installments).where(
            installments.c.entitlement_id == person.entitlement_id,
            installments.c.period == period,
        ),
    )
    return row


async def batches_add_up(stack, period) -> None:
    """Every batch of the period declares exactly the attempts it still carries."""
    for batch in await rows(stack, select(batches).where(batches.c.period == period)):
        [carried] = await rows(
            stack,
            select(
                func.count().label("n"),
                func.coalesce(func.sum(payment_attempts.c.amount), 0).label("s"),
            ).where(
                payment_attempts.c.batch_id == batch["batch_id"],
                payment_attempts.c.state != "CANCELLED",
            ),
        )
        assert (batch["control_count"], int(batch["control_sum"])) == (
            carried["n"],
            int(carried["s"]),
        )


async def cancelled_announced(stack) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in await rows(
        stack, select(outbox.c.key, outbox.c.payload).where(outbox.c.event_type == CANCELLED_TYPE)
    ):
        found[row["key"]] = found.get(row["key"], 0) + 1
    return found


async def prepared(stack, period, state: str) -> dict:
    async def reached():
        view = await stack.progress(period)
        return view if view["approval_state"] == state else None

    return await wait_until(reached, timeout=60, interval=0.1, message=f"{period} {state}")


class TestHolds:
    async def test_holds_after_preparation_leave_prepared_batches_with_corrected_totals(
        self, payout, sandbox
    ):
        period = "2031-03"
        stack = await payout()
        persons = people(6)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await verified(stack, persons)
        await stack.prepare_cycle(period)
        view = await prepared(stack, period, "AWAITING_REVALIDATION")
        assert view["revalidated"] is False
        before = {
            b["batch_id"]: b
            for b in await rows(stack, select(batches).where(batches.c.period == period))
        }
        assert before and all(b["state"] == "PREPARED" for b in before.values())

        deceased, mismatch, unknown = persons[0], persons[1], persons[2]
        parts = revalidation_parts(
            period,
            [
                (deceased.beneficiary_id, "DECEASED"),
                (mismatch.beneficiary_id, "IDENTITY_MISMATCH"),
                (unknown.beneficiary_id, "NOT_FOUND"),
            ],
            checked=6,
            part_size=2,
        )
        await deliver_revalidation(stack.runtime, parts[:1], twice=True)  # a part delivered twice
        async with unit_of_work(stack.runtime.session_factory, stack.runtime.outbox, "t") as uow:
            assert not await revalidation_done(uow, period)  # the last part has not come
        await deliver_revalidation(stack.runtime, parts[1:])

        expected = {
            deceased.entitlement_id: "HOLDER_DECEASED",
            mismatch.entitlement_id: "IDENTITY_MISMATCH",
            unknown.entitlement_id: "IDENTITY_NOT_FOUND",
        }
        for person in persons:
            row = await installment_of(stack, person, period)
            if person.entitlement_id in expected:
                assert (row["state"], row["hold_reason"]) == (
                    "ON_HOLD",
                    expected[person.entitlement_id],
                )
            else:
                assert (row["state"], row["hold_reason"]) == ("SCHEDULED", None)
        held_attempts = await rows(
            stack,
            select(payment_attempts)
            .join(installments, installments.c.id == payment_attempts.c.installment_id)
            .where(
                installments.c.entitlement_id.in_(list(expected)), installments.c.period == period
            ),
        )
        assert len(held_attempts) == 3
        assert all(a["state"] == "CANCELLED" and a["batch_id"] is None for a in held_attempts)
        await batches_add_up(stack, period)
        after = await rows(stack, select(batches).where(batches.c.period == period))
        assert sum(b["control_count"] for b in after) == 3
        assert sum(int(b["control_sum"]) for b in after) == sum(p.amount for p in persons[3:])
        # Reporting counted them as scheduled: each is announced cancelled, once.
        announced = await cancelled_announced(stack)
        held_ids = {
            str((await installment_of(stack, p, period))["id"]): expected[p.entitlement_id]
            for p in persons[:3]
        }
        assert announced == dict.fromkeys(held_ids, 1)
        reasons = {
            orjson.loads(r["payload"])["data"]["installment_id"]: orjson.loads(r["payload"])[
                "data"
            ]["reason"]
            for r in await rows(
                stack, select(outbox.c.payload).where(outbox.c.event_type == CANCELLED_TYPE)
            )
        }
        assert reasons == held_ids
        async with stack.runtime.session_factory() as session:
            parts_kept = (
                await session.execute(select(func.count()).select_from(parts_table))
            ).scalar_one()
            holds_kept = (
                await session.execute(select(func.count()).select_from(identity_holds))
            ).scalar_one()
        assert (parts_kept, holds_kept) == (2, 3)

        view = await prepared(stack, period, "PREPARED")
        assert view["revalidated"] is True
        # Applying again holds nothing more.
        async with unit_of_work(
            stack.runtime.session_factory, stack.runtime.outbox, "t", kind=UnitOfWork
        ) as uow:
            cycle_id = (await installment_of(stack, persons[0], period))["cycle_id"]
            assert await apply_identity_holds(uow, cycle_id, period) == 0

        # A new verified method does not lift an identity hold.
        await stack.feed([method_event(mismatch, method_id=f"{mismatch.method_id}-2")])
        await sandbox.seed_accounts(accounts([mismatch]))
        await verified(stack, [mismatch])
        row = await installment_of(stack, mismatch, period)
        assert (row["state"], row["hold_reason"]) == ("ON_HOLD", "IDENTITY_MISMATCH")

        # Approved and paid: only the three others; the held never reach a bank.
        await stack.approve_all(period)

        async def three_settled():
            states = await stack.states(period)
            return states if states.get("SETTLED") == 3 else None

        states = await wait_until(three_settled, timeout=60, interval=0.2, message="paid")
        assert states == {"SETTLED": 3, "ON_HOLD": 3}  # a held installment is not complete
        ledger = await sandbox.ledger()
        assert ledger["credits"] == 3

    async def test_a_hold_arriving_after_approval_never_touches_the_approved_batch(
        self, payout, sandbox
    ):
        period = "2031-04"
        stack = await payout(run_workers=False)
        persons = people(3)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        stack.start_workers()
        await verified(stack, persons)
        await stack.prepare_cycle(period)
        await prepared(stack, period, "AWAITING_REVALIDATION")
        await deliver_revalidation(stack.runtime, revalidation_parts(period, checked=3))
        await prepared(stack, period, "PREPARED")
        await stack.approve_all(period)
        approved = {
            b["batch_id"]: (b["control_count"], int(b["control_sum"]))
            for b in await rows(stack, select(batches).where(batches.c.period == period))
        }
        assert approved and all(
            b["state"] != "PREPARED"
            for b in await rows(stack, select(batches).where(batches.c.period == period))
        )
        # A late part naming someone already approved: kept, but the approved batch is not changed.
        late = revalidation_parts(period, [(persons[0].beneficiary_id, "DECEASED")], checked=3)[0]
        late = late.model_copy(update={"part": 2})
        await deliver_revalidation(stack.runtime, [late])
        row = await installment_of(stack, persons[0], period)
        assert row["state"] != "ON_HOLD" and row["hold_reason"] is None
        after = {
            b["batch_id"]: (b["control_count"], int(b["control_sum"]))
            for b in await rows(stack, select(batches).where(batches.c.period == period))
        }
        assert after == approved
        progress = await stack.wait_complete(period)
        assert (await stack.states(period)) == {"SETTLED": 3}
        assert progress["complete"]

    async def test_holds_known_before_the_cycle_is_prepared_are_applied_by_its_creation(
        self, payout, sandbox
    ):
        period = "2031-05"
        stack = await payout()
        persons = people(4)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await verified(stack, persons)
        # The answer is there before the cycle exists: kept, nothing to hold yet.
        await deliver_revalidation(
            stack.runtime,
            revalidation_parts(period, [(persons[3].beneficiary_id, "DECEASED")], checked=4),
        )
        await stack.prepare_cycle(period)
        view = await prepared(stack, period, "PREPARED")
        assert view["revalidated"] is True
        row = await installment_of(stack, persons[3], period)
        assert (row["state"], row["hold_reason"]) == ("ON_HOLD", "HOLDER_DECEASED")
        await batches_add_up(stack, period)
        assert (
            sum(
                b["control_count"]
                for b in await rows(stack, select(batches).where(batches.c.period == period))
            )
            == 3
        )
