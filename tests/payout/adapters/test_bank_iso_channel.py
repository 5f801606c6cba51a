"""An ISO 20022 file bank through the adapter: pain.001 out, pain.002 and camt.054 back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.payout.adapters.banks import (
    Iso20022Channel,
    PaymentBatch,
    PermanentBankError,
    TransientBankError,
    UnknownOutcome,
)
from tests.payout.adapters.adapter_helpers import (
    AGRIBANK,
    adapter_settings,
    batch_of,
    instruction,
    new_id,
)


async def seed(sandbox, count: int, status: str = "ACTIVE") -> list[str]:
    accounts = [f"3{new_id('')[:12]}" for _ in range(count)]
    await sandbox.admin.seed_accounts(
        [
            {"bin": AGRIBANK, "account_number": a, "holder_name": "Trần Thị Bình", "status": status}
            for a in accounts
        ]
    )
    return accounts


def channel_of(sandbox) -> Iso20022Channel:
    channel = sandbox.registry.channel(AGRIBANK)
    assert isinstance(channel, Iso20022Channel)
    return channel


class TestIsoFileBank:
    async def test_file_settles_and_camt054_callback_is_parsed(self, sandbox) -> None:
        accounts = await seed(sandbox, 25)
        closed = await seed(sandbox, 1, status="DECEASED")
        items = [instruction(a, 3_000_000 + n, bin_=AGRIBANK) for n, a in enumerate(accounts)]
        dead = instruction(closed[0], 1_000_000, bin_=AGRIBANK, name="Hoàng Văn Tư")
        batch = batch_of(AGRIBANK, [*items, dead])
        channel = channel_of(sandbox)

        result = await channel.submit_batch(batch)

        assert len(result.accepted) == 26 and result.rejected == ()
        outcomes = await sandbox.callbacks.wait_for([i.end_to_end_id for i in batch.items])
        assert sandbox.callbacks.rejections == []
        kinds = {d[0] for d in sandbox.callbacks.deliveries}
        assert kinds == {"iso"}
        for item in items:
            [outcome] = outcomes[item.end_to_end_id]
            assert (outcome.status, outcome.amount) == ("SETTLED", item.amount)
            assert outcome.bank_reference and outcome.event_id
        [failed] = outcomes[dead.end_to_end_id]
        assert (failed.status, failed.reason_code, failed.amount) == ("FAILED", "MD07", 1_000_000)

    async def test_pain002_reports_each_transaction(self, sandbox) -> None:
        [good] = await seed(sandbox, 1)
        ok = instruction(good, 2_000_000, bin_=AGRIBANK)
        missing = instruction("000111", 1_500_000, bin_=AGRIBANK)
        batch = batch_of(AGRIBANK, [ok, missing])
        channel = channel_of(sandbox)
        await channel.submit_batch(batch)

        report = await channel.status_report(batch.batch_id)

        assert report is not None and report.original_message_id == batch.batch_id
        assert report.group_status == "PART"
        statuses = {t.end_to_end_id: (t.status, t.reason_code) for t in report.transactions}
        assert statuses == {
            ok.end_to_end_id: ("ACSC", None),
            missing.end_to_end_id: ("RJCT", "AC01"),
        }
        assert await channel.status_report("NEVER-SENT") is None

    async def test_status_inquiry_and_statement_use_the_json_shape(self, sandbox) -> None:
        accounts = await seed(sandbox, 3)
        items = [instruction(a, 1_000_000 * (n + 1), bin_=AGRIBANK) for n, a in enumerate(accounts)]
        channel = channel_of(sandbox)
        await channel.submit_batch(batch_of(AGRIBANK, items))
        status = await channel.payment_status(items[1].end_to_end_id)
        assert (status.status, status.amount) == ("SETTLED", 2_000_000)
        today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
        statement = await channel.statement(today)
        assert sum(e.amount for e in statement) == 6_000_000

    async def test_resent_file_is_idempotent_on_message_and_end_to_end_ids(self, sandbox) -> None:
        accounts = await seed(sandbox, 5)
        batch = batch_of(AGRIBANK, [instruction(a, 400_000, bin_=AGRIBANK) for a in accounts])
        channel = channel_of(sandbox)
        await channel.submit_batch(batch)
        await channel.submit_batch(batch)
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"], ledger["duplicates"]) == (
            5,
            2_000_000,
            0,
        )

    async def test_control_totals_mismatch_refused(self, sandbox) -> None:
        [account] = await seed(sandbox, 1)
        batch = batch_of(
            AGRIBANK, [instruction(account, 100_000, bin_=AGRIBANK)], control_sum=100_001
        )
        with pytest.raises(PermanentBankError) as caught:
            await channel_of(sandbox).submit_batch(batch)
        assert caught.value.code == "CONTROL_TOTALS_MISMATCH"

    async def test_faults_classified_like_any_bank(self, sandbox, sandbox_process) -> None:
        from services.payout.adapters.banks import BankChannelRegistry

        [account] = await seed(sandbox, 1)
        item = instruction(account, 100_000, bin_=AGRIBANK)
        await sandbox.admin.set_faults(error_5xx_rate=1)
        with pytest.raises(TransientBankError):
            await channel_of(sandbox).submit_batch(batch_of(AGRIBANK, [item]))
        await sandbox.admin.set_faults(timeout_rate=1, timeout_hold_seconds=1)
        settings = adapter_settings(sandbox_process.url, read_timeout_seconds=0.3)
        async with BankChannelRegistry(settings) as impatient:
            with pytest.raises(UnknownOutcome):
                await impatient.channel(AGRIBANK).submit_batch(batch_of(AGRIBANK, [item]))
            assert (
                await impatient.channel(AGRIBANK).payment_status(item.end_to_end_id)
            ).status == "SETTLED"

    async def test_batch_for_another_bank_is_a_programming_error(self, sandbox) -> None:
        batch = PaymentBatch.of("B", "970436", [instruction("1", 1)], datetime(2023, 5, 5).date())
        with pytest.raises(ValueError):
            await channel_of(sandbox).submit_batch(batch)
