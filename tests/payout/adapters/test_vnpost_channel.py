"""Cash through the post office: one cash list per commune, signed confirmations back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.payout.adapters.banks import VNPOST, PermanentBankError
from tests.payout.adapters.adapter_helpers import batch_of, instruction

# Vĩnh Phúc communes (2023 list): Phường Tích Sơn, Xã Thanh Trù, Thị trấn Hợp Hòa
COMMUNES = ("08869", "08878", "08890")


def cash(amount: int, commune: str, name: str = "Bùi Thị Lan"):
    return instruction(None, amount, bin_=None, name=name, commune_code=commune)


class TestCashLists:
    def test_batch_split_into_one_list_per_commune_with_own_totals(self, sandbox) -> None:
        items = [cash(1_000_000 + n, COMMUNES[n % 3]) for n in range(9)]
        batch = batch_of(VNPOST, items)
        lists = sandbox.registry.channel(VNPOST).cash_lists(batch)
        assert [c["commune_code"] for c in lists] == sorted(COMMUNES)
        assert [c["list_id"] for c in lists] == [f"{batch.batch_id}-{c}" for c in sorted(COMMUNES)]
        assert sum(c["control_count"] for c in lists) == 9
        assert sum(c["control_sum"] for c in lists) == batch.control_sum
        assert all(c["period"] == "2023-05" for c in lists)

    async def test_paid_and_returned_confirmations_parsed(self, sandbox) -> None:
        items = [cash(1_200_000, COMMUNES[n % 3]) for n in range(6)]
        returned = {items[1].end_to_end_id: "DECEASED", items[4].end_to_end_id: "REFUSED"}
        await sandbox.admin.set_cash_outcomes(returned)
        channel = sandbox.registry.channel(VNPOST)

        result = await channel.submit_batch(batch_of(VNPOST, items))

        assert sorted(result.accepted) == sorted(i.end_to_end_id for i in items)
        outcomes = await sandbox.callbacks.wait_for([i.end_to_end_id for i in items])
        assert sandbox.callbacks.rejections == []
        today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
        for item in items:
            [outcome] = outcomes[item.end_to_end_id]
            if item.end_to_end_id in returned:
                assert (outcome.status, outcome.reason_code) == (
                    "RETURNED",
                    returned[item.end_to_end_id],
                )
                assert outcome.paid_on is None
            else:
                assert (outcome.status, outcome.paid_on, outcome.reason_code) == (
                    "PAID_CASH",
                    today,
                    None,
                )
                assert outcome.staff_id and outcome.amount == 1_200_000
        statement = await channel.statement(today)
        paid = [e for e in statement if e.status == "PAID"]
        assert sum(e.amount for e in paid) == 4 * 1_200_000

    async def test_item_held_at_the_counter_stays_pending_until_confirmed(self, sandbox) -> None:
        item = cash(900_000, COMMUNES[0])
        await sandbox.admin.set_cash_outcomes({item.end_to_end_id: "PENDING"})
        channel = sandbox.registry.channel(VNPOST)
        await channel.submit_batch(batch_of(VNPOST, [item]))
        assert (await channel.payment_status(item.end_to_end_id)).status == "PENDING"

        await sandbox.admin.set_cash_outcomes({item.end_to_end_id: "NOT_FOUND"})

        [[outcome]] = (await sandbox.callbacks.wait_for([item.end_to_end_id])).values()
        assert (outcome.status, outcome.reason_code) == ("RETURNED", "NOT_FOUND")
        status = await channel.payment_status(item.end_to_end_id)
        assert (status.status, status.reason_code) == ("RETURNED", "NOT_FOUND")

    async def test_resent_batch_pays_nobody_twice(self, sandbox) -> None:
        batch = batch_of(VNPOST, [cash(500_000, c) for c in COMMUNES])
        channel = sandbox.registry.channel(VNPOST)
        await channel.submit_batch(batch)
        await channel.submit_batch(batch)
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"], ledger["duplicates"]) == (
            3,
            1_500_000,
            0,
        )
        assert (await channel.payment_status(batch.items[0].end_to_end_id)).status == "PAID_CASH"

    async def test_batch_with_wrong_control_totals_refused_before_sending(self, sandbox) -> None:
        batch = batch_of(VNPOST, [cash(500_000, COMMUNES[0])], control_sum=1)
        with pytest.raises(PermanentBankError) as caught:
            await sandbox.registry.channel(VNPOST).submit_batch(batch)
        assert caught.value.code == "CONTROL_TOTALS_MISMATCH"
        assert (await sandbox.admin.ledger())["transfers"] == 0

    async def test_post_office_unavailable_leaves_the_list_to_send_again(self, sandbox) -> None:
        await sandbox.admin.set_faults(error_5xx_rate=1)
        batch = batch_of(VNPOST, [cash(500_000, COMMUNES[0])])
        result = await sandbox.registry.channel(VNPOST).submit_batch(batch)
        assert result.not_sent == (batch.items[0].end_to_end_id,)
        assert result.accepted == () and result.in_doubt == ()

    async def test_cash_item_without_commune_is_a_programming_error(self, sandbox) -> None:
        with pytest.raises(ValueError):
            await sandbox.registry.channel(VNPOST).submit_batch(
                batch_of(VNPOST, [instruction(None, 1, bin_=None)])
            )

    async def test_no_name_inquiry_for_cash(self, sandbox) -> None:
        result = await sandbox.registry.channel(VNPOST).name_inquiry("anything")
        assert result.status == "BANK_NOT_SUPPORTED"
