"""Account verification: the bank's holder name against the beneficiary's or representative's,
with diacritics folded; every result published through the outbox."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from services.payout.adapters.orm import payment_methods
from shared.events.contracts import Representative
from tests.payout.harness import VCB, accounts, intake_events, people, verified

PERIOD = "2031-07"


async def statuses(stack) -> dict[str, tuple[str, str | None]]:
    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(
                    payment_methods.c.beneficiary_id,
                    payment_methods.c.status,
                    payment_methods.c.status_reason,
                )
            )
        ).all()
    return {b: (s, r) for b, s, r in rows}


class TestNameInquiry:
    async def test_verified_mismatch_no_account_and_unsupported_bank(self, payout, sandbox):
        stack = await payout()
        good, mismatch, missing, unsupported, represented = (
            people(1, bank_bin=VCB, start=n) for n in range(5)
        )
        good[0].name = "Nguyễn Văn Đức"
        unsupported[0].bank_bin = "999999"
        represented[0].method = "AUTHORISED_ACCOUNT"
        represented[0].representative = Representative(
            full_name="Trần Thị Hồng Đào",
            valid_from=date(2020, 1, 1),
            valid_until=date(2031, 12, 31),
        )
        # The bank keeps names in upper case without diacritics (đ→d).
        await sandbox.seed_accounts(
            accounts(good, name="NGUYEN VAN DUC")
            + accounts(mismatch, name="LE THI KHAC")
            + accounts(represented, name="TRAN THI HONG DAO")
        )
        everyone = good + mismatch + missing + unsupported + represented
        await stack.feed([e for p in everyone for e in intake_events(p, start_period="2031-01")])
        await verified(stack, everyone)
        found = await statuses(stack)
        assert found[good[0].beneficiary_id] == ("VERIFIED", None)
        assert found[represented[0].beneficiary_id] == ("VERIFIED", None)
        assert found[mismatch[0].beneficiary_id] == ("FAILED", "NAME_MISMATCH")
        assert found[missing[0].beneficiary_id] == ("FAILED", "NO_SUCH_ACCOUNT")
        assert found[unsupported[0].beneficiary_id] == ("FAILED", "BANK_NOT_SUPPORTED")
        types = await stack.outbox_types()
        assert types["account-verified"] == 2 and types["account-verification-failed"] == 3
        # Only verified methods pay; the others wait, visibly, with their reason.
        progress = await stack.start_cycle(PERIOD)
        assert (
            progress["by_state"]["SCHEDULED"]["count"]
            + progress["by_state"].get("SUBMITTED", {}).get("count", 0)
            + progress["by_state"].get("SETTLED", {}).get("count", 0)
            == 2
        )
        assert progress["by_state"]["ON_HOLD"]["count"] == 3
        async with stack.client() as client:
            held = (await client.get("/v1/installments", params={"state": "ON_HOLD"})).json()[
                "items"
            ]
        assert {h["hold_reason"] for h in held} == {"METHOD_VERIFICATION_FAILED"}
        assert all(h["pending_age_seconds"] >= 0 for h in held)

    async def test_a_held_installment_is_paid_once_a_new_method_is_verified(self, payout, sandbox):
        stack = await payout()
        person = people(1, bank_bin=VCB)
        await stack.feed(list(intake_events(person[0], start_period="2031-01")))
        await verified(stack, person)  # no account at the bank yet: refused
        progress = await stack.start_cycle(PERIOD)
        assert progress["by_state"]["ON_HOLD"]["count"] == 1
        await sandbox.seed_accounts(accounts(person))
        from tests.payout.harness import method_event

        await stack.feed([method_event(person[0], method_id=person[0].method_id + "-2")])
        done = await stack.wait_complete(PERIOD)
        assert done["by_state"] == {"SETTLED": {"count": 1, "sum": person[0].amount}}

    async def test_an_expired_authorisation_does_not_pay(self, payout, sandbox):
        stack = await payout()
        person = people(1, bank_bin=VCB)[0]
        person.method = "AUTHORISED_ACCOUNT"
        person.representative = Representative(
            full_name="Trần Thị Hoa", valid_from=date(2030, 1, 1), valid_until=date(2031, 6, 30)
        )
        await sandbox.seed_accounts(accounts([person]))
        await stack.feed(intake_events(person, start_period="2031-01"))
        await verified(stack, [person])
        progress = await stack.start_cycle(PERIOD)
        assert progress["by_state"]["ON_HOLD"]["count"] == 1
        async with stack.client() as client:
            held = (await client.get("/v1/installments", params={"period": PERIOD})).json()["items"]
        assert held[0]["hold_reason"] == "AUTHORISATION_NOT_VALID"
