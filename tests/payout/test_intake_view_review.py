"""The intake view applied set-based gives what applying the same events one by one gives: the
same events fed all in one poll batch to one payout and one per batch to another end in the
same tables, for a person's changes in every order that matters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from services.payout.adapters.orm import (
    beneficiaries,
    entitlements,
    installments,
    outbox,
    payment_methods,
    verifications,
)
from shared.events.contracts import (
    BeneficiaryRegistered,
    BeneficiaryRegisteredV1,
    Contract,
    EntitlementStopped,
    PaymentMethodChangedV1,
    Representative,
)
from tests.payout.harness import COMMUNE, LIST_2023, VCB, intake_events, method_event, people
from tests.support.sandbox import free_port

PERIOD = "2031-01"


def renamed(person, name: str) -> BeneficiaryRegistered:
    return BeneficiaryRegistered(
        beneficiary_id=person.beneficiary_id,
        full_name=name,
        commune_code=COMMUNE,
        commune_list_date=LIST_2023,
        registered_via="ROLL",
        registered_at=datetime.now(UTC),
    )


def changed(person, n: int, *, at: datetime | None = None, **fields):
    """The person's n-th method, changed at `at` (later for a higher n by default)."""
    variant = replace(person, method_id=f"{person.method_id}-{n}", **fields)
    event = method_event(variant)
    return event.model_copy(update={"changed_at": at or event.changed_at + timedelta(seconds=n)})


def cash(person, n: int, **kwargs):
    return changed(
        person, n, method="CASH_POST_OFFICE", bank_bin=None, account_number=None, **kwargs
    )


def stopped(person, period: str = PERIOD) -> EntitlementStopped:
    return EntitlementStopped(
        entitlement_id=person.entitlement_id,
        beneficiary_id=person.beneficiary_id,
        reason="OTHER",
        effective_period=period,
        stopped_at=datetime.now(UTC),
    )


async def tables(stack) -> dict[str, object]:
    """What the view holds, without ids and the moments the rows were written."""
    async with stack.runtime.session_factory() as session:

        async def rows(statement) -> list[tuple]:
            return [tuple(r) for r in (await session.execute(statement)).all()]

        pm = payment_methods.c
        return {
            "beneficiaries": await rows(
                select(beneficiaries.c.beneficiary_id, beneficiaries.c.full_name).order_by(
                    beneficiaries.c.beneficiary_id
                )
            ),
            "entitlements": await rows(
                select(
                    entitlements.c.entitlement_id,
                    entitlements.c.beneficiary_id,
                    entitlements.c.amount,
                    entitlements.c.start_period,
                    entitlements.c.end_period,
                ).order_by(entitlements.c.entitlement_id)
            ),
            "payment_methods": await rows(
                select(
                    pm.beneficiary_id,
                    pm.method_id,
                    pm.method,
                    pm.bank_bin,
                    pm.account_number,
                    pm.account_holder_name,
                    pm.representative_name,
                    pm.status,
                    pm.status_reason,
                    pm.changed_at,
                    pm.verified_at.is_(None),
                ).order_by(pm.beneficiary_id)
            ),
            "verifications": await rows(
                select(
                    verifications.c.method_id,
                    verifications.c.beneficiary_id,
                    verifications.c.expected_name,
                    verifications.c.state,
                ).order_by(verifications.c.id)
            ),
            "installments": await rows(
                select(
                    installments.c.entitlement_id,
                    installments.c.period,
                    installments.c.state,
                    installments.c.hold_reason,
                    installments.c.method_id,
                ).order_by(installments.c.entitlement_id, installments.c.period)
            ),
            "outbox": await rows(
                select(outbox.c.event_type, func.count())
                .group_by(outbox.c.event_type)
                .order_by(outbox.c.event_type)
            ),
            "dead_lettered": stack.consumer.dead_lettered_total,
        }


async def both_ways(
    payout, events: list[Contract], *, before: list[Contract] = (), cycle: bool = False
) -> tuple[dict, dict]:
    """The tables after `events` all in one batch, and after them one per batch; `before` is
    fed first (and a cycle started, if asked) in both payouts."""
    results = []
    for one_by_one in (False, True):
        stack = await payout(run_workers=False, port=free_port())
        if before:
            await stack.feed(list(before))
        if cycle:
            await stack.start_cycle(PERIOD)
        if one_by_one:
            for event in events:
                await stack.feed([event])
        else:
            await stack.feed(events)
        results.append(await tables(stack))
    return results[0], results[1]


def unpaid(person) -> list[Contract]:
    """Registered and granted, with no method yet: a cycle holds their installment."""
    return intake_events(person, start_period=PERIOD, method=False)


class TestOneBatchIsTheSequence:
    async def test_three_changes_of_one_person_with_a_held_installment(self, payout, sandbox):
        a, b, c = people(3, bank_bin=VCB)
        events = [
            changed(a, 1),
            changed(a, 2, account_number="11112222"),
            cash(a, 3),
            changed(b, 1),
            cash(b, 2),
            changed(b, 3, account_number="33334444"),
            changed(c, 1, bank_bin=None),  # fails at once
            changed(c, 2),
            changed(c, 3, bank_bin=None),
        ]
        before = unpaid(a) + unpaid(b) + unpaid(c)
        batch, sequence = await both_ways(payout, events, before=before, cycle=True)
        assert batch == sequence
        assert [r[2] for r in batch["installments"]] == ["SCHEDULED", "SCHEDULED", "ON_HOLD"]
        assert [r[7] for r in batch["payment_methods"]] == [
            "VERIFIED",
            "PENDING_VERIFICATION",
            "FAILED",
        ]

    async def test_renames_between_and_after_method_changes(self, payout, sandbox):
        a, b = people(2, bank_bin=VCB)
        events = [
            *intake_events(a, start_period=PERIOD),
            renamed(a, "Hoàng Thị Mới"),
            changed(a, 2),
            renamed(a, "Hoàng Thị Sau"),
            renamed(b, "Lý Văn Trước"),
            changed(b, 1),
            renamed(b, "Lý Văn Sau"),
            changed(b, 2),
            changed(b, 3),
        ]
        batch, sequence = await both_ways(payout, events, before=unpaid(b))
        assert batch == sequence
        assert [r[2] for r in batch["verifications"] if r[3] == "PENDING"] == [
            "Hoàng Thị Mới",
            "Lý Văn Sau",
        ]

    async def test_an_older_change_after_a_newer_one_and_a_method_announced_again(
        self, payout, sandbox
    ):
        a, b = people(2, bank_bin=VCB)
        newer = changed(a, 2)
        older = changed(a, 1, at=newer.changed_at - timedelta(hours=1))
        events = [
            newer,
            older,
            newer.model_copy(),  # the same method again, in another event
            changed(b, 1),
            changed(b, 1),
            cash(b, 2),
            changed(b, 1, at=newer.changed_at + timedelta(hours=1)),  # back to the first
        ]
        batch, sequence = await both_ways(payout, events, before=unpaid(a) + unpaid(b), cycle=True)
        assert batch == sequence
        assert batch["payment_methods"][0][1] == newer.method_id

    async def test_authorised_accounts_with_a_representative(self, payout, sandbox):
        (a,) = people(1, bank_bin=VCB)
        proxy = Representative(full_name="Vũ Thị Đại Diện", valid_from=date(2020, 1, 1))
        later = Representative(full_name="Đinh Văn Khác", valid_from=date(2020, 1, 1))
        events = [
            changed(a, 1, method="AUTHORISED_ACCOUNT", representative=proxy),
            renamed(a, "Hoàng Thị Mới"),
            changed(a, 2),
            changed(a, 3, method="AUTHORISED_ACCOUNT", representative=later),
            cash(a, 4),
        ]
        batch, sequence = await both_ways(payout, events, before=unpaid(a), cycle=True)
        assert batch == sequence
        assert [r[2] for r in batch["verifications"]] == [
            "Vũ Thị Đại Diện",
            "Hoàng Thị Mới",
            "Đinh Văn Khác",
        ]

    async def test_grants_and_stops_in_one_batch(self, payout, sandbox):
        a, b, c = people(3, bank_bin=VCB)
        events = [
            *intake_events(a, start_period=PERIOD),
            stopped(a),  # granted in the same batch
            *intake_events(a, start_period=PERIOD)[1:2],  # granted again after its stop
            stopped(b),  # its installment was made by a cycle before
            cash(b, 1),
            cash(c, 1),
            stopped(c),
            *intake_events(c, start_period=PERIOD)[1:2],
        ]
        batch, sequence = await both_ways(payout, events, before=unpaid(b) + unpaid(c), cycle=True)
        assert batch == sequence
        assert [r[2] for r in batch["installments"]] == ["CANCELLED", "CANCELLED"]

    async def test_version_one_events_read_alike(self, payout, sandbox):
        (a,) = people(1, bank_bin=VCB)
        first = changed(a, 1)
        events = [
            BeneficiaryRegisteredV1(
                **renamed(a, "Trương Văn Cũ").model_dump(),
                national_id="001203004567",
                date_of_birth=date(1950, 3, 4),
            ),
            *intake_events(a, start_period=PERIOD)[1:2],
            PaymentMethodChangedV1(**first.model_dump()),
            renamed(a, "Trương Văn Mới"),
            PaymentMethodChangedV1(**changed(a, 2).model_dump()),
        ]
        batch, sequence = await both_ways(payout, events)
        assert batch == sequence
        assert batch["beneficiaries"] == [(a.beneficiary_id, "Trương Văn Mới")]
        assert [r[2:] for r in batch["verifications"]] == [
            ("Trương Văn Cũ", "SUPERSEDED"),
            ("Trương Văn Mới", "PENDING"),
        ]

    async def test_a_change_the_database_refuses_is_dead_lettered_and_the_rest_lands(
        self, payout, sandbox
    ):
        a, b, c = people(3, bank_bin=VCB)
        clash = changed(c, 1).model_copy(update={"method_id": f"{a.method_id}-1"})
        events = [changed(a, 1), renamed(b, "Lý Văn Mới"), clash, changed(b, 1), cash(a, 2)]
        before = unpaid(a) + unpaid(b) + unpaid(c)
        batch, sequence = await both_ways(payout, events, before=before, cycle=True)
        assert batch == sequence
        assert batch["dead_lettered"] == 1

    async def test_duplicates_in_one_batch_and_a_redelivered_batch_have_one_effect(
        self, payout, sandbox
    ):
        a, b = people(2, bank_bin=VCB)
        events = [*intake_events(a, start_period=PERIOD), changed(a, 2), cash(b, 1), stopped(b)]
        stack = await payout(run_workers=False, port=free_port())
        await stack.feed(unpaid(b))
        await stack.start_cycle(PERIOD)
        await stack.feed(events, twice=True)
        await stack.deliver(stack.last_records)
        _, sequence = await both_ways(payout, events, before=unpaid(b), cycle=True)
        assert await tables(stack) == sequence


class TestAChangeThatFailsAtOnce:
    async def test_an_account_without_a_bank_gives_a_held_installment_its_current_reason(
        self, payout, sandbox
    ):
        """A method change without a bank fails at once; an installment the cycle holds for the
        person now says why it waits: the method it would be paid by failed."""
        (a,) = people(1, bank_bin=VCB)
        stack = await payout(run_workers=False)
        await stack.feed(unpaid(a))
        await stack.start_cycle(PERIOD)
        await stack.feed([changed(a, 1, bank_bin=None)])
        held = await tables(stack)
        assert held["payment_methods"][0][7] == "FAILED"
        assert held["installments"] == [
            (a.entitlement_id, PERIOD, "ON_HOLD", "METHOD_VERIFICATION_FAILED", None)
        ]
        assert [t for t, _ in held["outbox"] if "account-verification-failed" in t]


class TestAMethodComeBackTo:
    async def test_an_account_superseded_then_chosen_again_is_verified_again(self, payout, sandbox):
        (a,) = people(1, bank_bin=VCB)
        stack = await payout(run_workers=False)
        first = changed(a, 1)
        await stack.feed([*unpaid(a), first, cash(a, 2)])
        await stack.feed([first.model_copy(update={"changed_at": first.changed_at + timedelta(1)})])
        async with stack.runtime.session_factory() as session:
            states = (
                await session.execute(
                    select(verifications.c.method_id, verifications.c.state).order_by(
                        verifications.c.id
                    )
                )
            ).all()
        assert [tuple(row) for row in states] == [(first.method_id, "PENDING")]
