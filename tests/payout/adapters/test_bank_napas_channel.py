"""A NAPAS-style bank through the adapter, against the sandbox running as a real server."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.payout.adapters.banks import (
    BankChannelRegistry,
    PermanentBankError,
    TransientBankError,
    UnknownOutcome,
    describe,
)
from tests.payout.adapters.adapter_helpers import (
    BIDV,
    VCB,
    adapter_settings,
    batch_of,
    instruction,
    new_id,
)


def vn_today() -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()


async def seed(sandbox, bin_: str, count: int, status: str = "ACTIVE", name: str = "Nguyễn Văn An"):
    accounts = [f"{bin_[-3:]}{new_id('')[:10]}" for _ in range(count)]
    await sandbox.admin.seed_accounts(
        [
            {"bin": bin_, "account_number": a, "holder_name": name, "status": status}
            for a in accounts
        ]
    )
    return accounts


class TestNameInquiry:
    async def test_known_account_returns_folded_holder_name(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1, name="Đặng Thị Ánh Tuyết")
        result = await sandbox.registry.channel(VCB).name_inquiry(account)
        assert (result.status, result.account_name) == ("FOUND", "DANG THI ANH TUYET")

    async def test_unknown_account_not_found(self, sandbox) -> None:
        result = await sandbox.registry.channel(VCB).name_inquiry("000000000")
        assert (result.status, result.account_name) == ("NOT_FOUND", None)

    async def test_closed_account_not_found(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1, status="CLOSED")
        result = await sandbox.registry.channel(VCB).name_inquiry(account)
        assert result.status == "NOT_FOUND"

    async def test_bank_the_network_does_not_know_is_not_supported(self, sandbox) -> None:
        result = await sandbox.registry.channel("970999").name_inquiry("123")
        assert (result.status, result.account_name) == ("BANK_NOT_SUPPORTED", None)

    async def test_iso_bank_answers_name_inquiry_too(self, sandbox) -> None:
        [account] = await seed(sandbox, "970405", 1, name="Lê Văn Đông")
        result = await sandbox.registry.channel("970405").name_inquiry(account)
        assert (result.status, result.account_name) == ("FOUND", "LE VAN DONG")


class TestSettlement:
    async def test_batch_settles_by_signed_callbacks_and_statement_totals_match(
        self, sandbox
    ) -> None:
        accounts = await seed(sandbox, VCB, 40)
        items = [instruction(a, 1_000_000 + 1_000 * n) for n, a in enumerate(accounts)]
        channel = sandbox.registry.channel(VCB)

        result = await channel.submit_batch(batch_of(VCB, items))

        assert set(result.accepted) == {i.end_to_end_id for i in items}
        assert result.rejected == ()
        outcomes = await sandbox.callbacks.wait_for([i.end_to_end_id for i in items])
        assert {o[0].status for o in outcomes.values()} == {"SETTLED"}
        assert all(o[0].amount == i.amount for i, o in zip(items, outcomes.values(), strict=False))
        assert sandbox.callbacks.rejections == []
        settled_sum = sum(o[0].amount for o in outcomes.values())
        statement = await channel.statement(datetime.fromisoformat(vn_today()).date())
        mine = [e for e in statement if e.end_to_end_id in outcomes]
        assert len(mine) == 40
        assert sum(e.amount for e in mine) == settled_sum == sum(i.amount for i in items)
        assert {e.status for e in mine} == {"CREDITED"}

    async def test_settled_transfer_status_has_reference_and_time(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1)
        item = instruction(account, 2_340_000)
        channel = sandbox.registry.channel(VCB)
        await channel.submit_batch(batch_of(VCB, [item]))
        status = await channel.payment_status(item.end_to_end_id)
        assert (status.status, status.amount, status.reason_code) == ("SETTLED", 2_340_000, None)
        assert status.bank_reference and status.settled_at.tzinfo == UTC
        [[outcome]] = (await sandbox.callbacks.wait_for([item.end_to_end_id])).values()
        assert outcome.bank_reference == status.bank_reference

    async def test_payment_the_bank_never_received_is_unknown_to_bank(self, sandbox) -> None:
        status = await sandbox.registry.channel(VCB).payment_status(new_id())
        assert status.status == "UNKNOWN_TO_BANK"

    @pytest.mark.parametrize(
        "account_status, reason", [("CLOSED", "AC04"), ("BLOCKED", "AC06"), ("DECEASED", "MD07")]
    )
    async def test_account_status_fails_with_its_reason(
        self, sandbox, account_status, reason
    ) -> None:
        [account] = await seed(sandbox, VCB, 1, status=account_status)
        item = instruction(account, 1_000_000)
        channel = sandbox.registry.channel(VCB)
        await channel.submit_batch(batch_of(VCB, [item]))
        [[outcome]] = (await sandbox.callbacks.wait_for([item.end_to_end_id])).values()
        assert (outcome.status, outcome.reason_code) == ("FAILED", reason)
        assert describe(reason).permanent
        assert (await channel.payment_status(item.end_to_end_id)).reason_code == reason

    async def test_unknown_account_fails_ac01(self, sandbox) -> None:
        item = instruction("999999999", 1_000_000)
        await sandbox.registry.channel(VCB).submit_batch(batch_of(VCB, [item]))
        [[outcome]] = (await sandbox.callbacks.wait_for([item.end_to_end_id])).values()
        assert (outcome.status, outcome.reason_code) == ("FAILED", "AC01")

    async def test_non_positive_amount_rejected_at_intake(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1)
        good, bad = instruction(account, 500_000), instruction(account, 0)
        result = await sandbox.registry.channel(VCB).submit_batch(batch_of(VCB, [good, bad]))
        assert result.accepted == (good.end_to_end_id,)
        assert result.rejected == ((bad.end_to_end_id, "AM12"),)

    async def test_returned_after_settlement_comes_back_as_returned(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1)
        item = instruction(account, 700_000)
        channel = sandbox.registry.channel(VCB)
        await channel.submit_batch(batch_of(VCB, [item]))
        await sandbox.callbacks.wait_for([item.end_to_end_id])
        await sandbox.admin.return_transfer(item.end_to_end_id, "AC04")
        await sandbox.admin.wait_callbacks_idle()
        statuses = [o.status for o in sandbox.callbacks.by_end_to_end_id[item.end_to_end_id]]
        assert statuses == ["SETTLED", "RETURNED"]
        assert (await channel.payment_status(item.end_to_end_id)).status == "RETURNED"


class TestNoDoublePayment:
    async def test_control_totals_mismatch_refuses_whole_batch(self, sandbox) -> None:
        accounts = await seed(sandbox, VCB, 3)
        items = [instruction(a, 1_000_000) for a in accounts]
        channel = sandbox.registry.channel(VCB)
        for wrong in ({"control_count": 2}, {"control_sum": 3_000_001}):
            with pytest.raises(PermanentBankError) as caught:
                await channel.submit_batch(batch_of(VCB, items, **wrong))
            assert caught.value.code == "CONTROL_TOTALS_MISMATCH"
        assert (await sandbox.admin.ledger())["transfers"] == 0
        assert (await channel.payment_status(items[0].end_to_end_id)).status == "UNKNOWN_TO_BANK"

    async def test_resending_the_same_batch_never_credits_twice(self, sandbox) -> None:
        accounts = await seed(sandbox, VCB, 20)
        batch = batch_of(VCB, [instruction(a, 1_200_000) for a in accounts])
        channel = sandbox.registry.channel(VCB)
        first = await channel.submit_batch(batch)
        ledger = await sandbox.admin.ledger()

        again = await channel.submit_batch(batch)
        again_twice = await channel.submit_batch(batch)

        assert first.accepted == again.accepted == again_twice.accepted
        after = await sandbox.admin.ledger()
        assert (after["credits"], after["total_credited"]) == (
            ledger["credits"],
            ledger["total_credited"],
        )
        assert (after["credits"], after["total_credited"]) == (20, 24_000_000)
        assert after["duplicates"] == 0
        entries = (await sandbox.admin.ledger_entries(limit=100))["entries"]
        assert {e["times_received"] for e in entries} == {3}

    async def test_same_payment_in_another_batch_is_not_credited_and_is_counted(
        self, sandbox
    ) -> None:
        [account] = await seed(sandbox, VCB, 1)
        item = instruction(account, 900_000)
        channel = sandbox.registry.channel(VCB)
        await channel.submit_batch(batch_of(VCB, [item]))

        result = await channel.submit_batch(batch_of(VCB, [item]))

        assert result.accepted == (item.end_to_end_id,)
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"]) == (1, 900_000)
        assert ledger["duplicates"] == 1  # a second payment was asked for, and refused


class TestFaults:
    async def test_bank_unavailable_is_transient_and_nothing_happened(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1)
        item = instruction(account, 1_000_000)
        channel = sandbox.registry.channel(VCB)
        await sandbox.admin.set_faults(error_5xx_rate=1)
        with pytest.raises(TransientBankError):
            await channel.submit_batch(batch_of(VCB, [item]))
        with pytest.raises(TransientBankError):
            await channel.name_inquiry(account)
        assert (await channel.payment_status(item.end_to_end_id)).status == "UNKNOWN_TO_BANK"

    async def test_timeout_is_unknown_outcome_and_status_shows_it_settled(
        self, sandbox, sandbox_process
    ) -> None:
        [account] = await seed(sandbox, VCB, 1)
        item = instruction(account, 1_000_000)
        await sandbox.admin.set_faults(timeout_rate=1, timeout_hold_seconds=1.5)
        settings = adapter_settings(sandbox_process.url, read_timeout_seconds=0.3)
        async with BankChannelRegistry(settings) as impatient:
            channel = impatient.channel(VCB)
            with pytest.raises(UnknownOutcome):
                await channel.submit_batch(batch_of(VCB, [item]))
            status = await channel.payment_status(item.end_to_end_id)
        assert status.status == "SETTLED"
        assert (await sandbox.admin.ledger())["credits"] == 1

    async def test_unreachable_bank_is_transient(self, sandbox) -> None:
        from tests.support.sandbox import free_port

        settings = adapter_settings(f"http://127.0.0.1:{free_port()}")
        async with BankChannelRegistry(settings) as nowhere:
            with pytest.raises(TransientBankError):
                await nowhere.channel(VCB).submit_batch(batch_of(VCB, [instruction("1", 1)]))

    async def test_injected_permanent_failures_carry_their_reason_codes(self, sandbox) -> None:
        accounts = await seed(sandbox, BIDV, 30)
        items = [instruction(a, 1_000_000, bin_=BIDV) for a in accounts]
        await sandbox.admin.set_faults(permanent_failure_rate=1, seed=7)
        await sandbox.registry.channel(BIDV).submit_batch(batch_of(BIDV, items))
        outcomes = await sandbox.callbacks.wait_for([i.end_to_end_id for i in items])
        reasons = Counter(o[0].reason_code for o in outcomes.values())
        assert {o[0].status for o in outcomes.values()} == {"FAILED"}
        assert set(reasons) <= {"AC01", "AC04", "AC06", "MD07"} and len(reasons) > 1
        assert (await sandbox.admin.ledger())["credits"] == 0

    async def test_duplicate_and_reordered_callbacks_repeat_stable_event_ids(self, sandbox) -> None:
        accounts = await seed(sandbox, VCB, 30)
        channel = sandbox.registry.channel(VCB)
        await sandbox.admin.set_faults(duplicate_callback_rate=1, reorder_callback_rate=1, seed=3)
        batches = [batch_of(VCB, [instruction(a, 100_000)]) for a in accounts[:15]] + [
            batch_of(VCB, [instruction(a, 100_000) for a in accounts[15:]])
        ]
        for batch in batches:
            await channel.submit_batch(batch)
        await sandbox.admin.wait_callbacks_idle()
        by_e2e = sandbox.callbacks.by_end_to_end_id
        assert len(by_e2e) == 30
        for outcomes in by_e2e.values():
            assert len(outcomes) == 2 and outcomes[0].event_id == outcomes[1].event_id
        delivery_ids = Counter(d[2] for d in sandbox.callbacks.deliveries)
        assert set(delivery_ids.values()) == {2}
        stats = await sandbox.admin.webhooks()
        assert stats["reordered_deliveries"] >= 2 and stats["duplicate_deliveries"] >= 2

    async def test_failed_callback_deliveries_are_retried(self, sandbox) -> None:
        [account] = await seed(sandbox, VCB, 1)
        item = instruction(account, 1_000_000)
        sandbox.callbacks.fail_next = 2
        await sandbox.registry.channel(VCB).submit_batch(batch_of(VCB, [item]))
        await sandbox.callbacks.wait_for([item.end_to_end_id])
        assert (await sandbox.admin.webhooks())["failed_attempts"] == 2
