"""The sandbox's NAPAS-style bank API, ledger and faults, over plain HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from zoneinfo import ZoneInfo

VCB = "970436"


def transfers(accounts: list[str], amount: int = 1_000_000, prefix: str = "E") -> list[dict]:
    return [
        {
            "end_to_end_id": f"{prefix}{n:06d}",
            "account_number": account,
            "account_name": "NGUYEN VAN AN",
            "amount": amount,
            "currency": "VND",
            "remittance_info": "Tro cap that nghiep",
        }
        for n, account in enumerate(accounts)
    ]


def batch(batch_id: str, items: list[dict], **overrides) -> dict:
    body = {
        "batch_id": batch_id,
        "control_count": len(items),
        "control_sum": sum(i["amount"] for i in items),
        "transfers": items,
    }
    return {**body, **overrides}


async def seed(sandbox, count: int, status: str = "ACTIVE", bin_: str = VCB) -> list[str]:
    accounts = [f"10{n:08d}" for n in range(count)]
    await sandbox.admin.seed_accounts(
        [
            {"bin": bin_, "account_number": a, "holder_name": "Nguyễn Văn An", "status": status}
            for a in accounts
        ]
    )
    return accounts


async def post_batch(sandbox, body: dict, bin_: str = VCB, key: str | None = None):
    return await sandbox.http.post(
        f"/banks/{bin_}/transfers", json=body, headers={"Idempotency-Key": key or body["batch_id"]}
    )


class TestNameInquiry:
    async def test_names_folded_to_upper_ascii(self, sandbox) -> None:
        await sandbox.admin.seed_accounts(
            [
                {"bin": VCB, "account_number": "1", "holder_name": "  Đỗ   Thị Ngọc Ánh "},
                {"bin": VCB, "account_number": "2", "holder_name": "Nguyễn Hữu Đạt"},
            ]
        )
        for account, name in (("1", "DO THI NGOC ANH"), ("2", "NGUYEN HUU DAT")):
            answer = await sandbox.http.post(
                f"/banks/{VCB}/name-inquiry", json={"account_number": account}
            )
            assert answer.json() == {"account_number": account, "account_name": name}

    async def test_unknown_account_and_unknown_bank(self, sandbox) -> None:
        answer = await sandbox.http.post(
            f"/banks/{VCB}/name-inquiry", json={"account_number": "404"}
        )
        assert (answer.status_code, answer.json()) == (404, {"code": "ACCOUNT_NOT_FOUND"})
        answer = await sandbox.http.post("/banks/123456/name-inquiry", json={"account_number": "1"})
        assert (answer.status_code, answer.json()) == (404, {"code": "BANK_NOT_SUPPORTED"})

    async def test_seeding_accounts_of_unknown_bank_refused(self, sandbox) -> None:
        answer = await sandbox.http.post(
            "/admin/accounts", json=[{"bin": "123456", "account_number": "1", "holder_name": "A"}]
        )
        assert answer.status_code == 422


class TestTransfers:
    async def test_accepted_batch_settles_with_grouped_signed_callbacks(self, sandbox) -> None:
        accounts = await seed(sandbox, 250)
        answer = await post_batch(sandbox, batch("B1", transfers(accounts)))
        assert answer.status_code == 202
        assert len(answer.json()["accepted"]) == 250 and answer.json()["rejected"] == []

        outcomes = await sandbox.callbacks.wait_for([f"E{n:06d}" for n in range(250)])

        assert sandbox.callbacks.rejections == []
        assert {o[0]["type"] for o in outcomes.values()} == {"transfer.settled"}
        per_delivery = (await sandbox.http.get("/admin/config")).json()["webhook_batch_size"]
        sizes = sorted(len(d[3]) for d in sandbox.callbacks.deliveries)
        assert max(sizes) <= per_delivery and len(sizes) <= 4  # grouped, never one per transfer
        day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
        statement = (await sandbox.http.get(f"/banks/{VCB}/statements/{day}")).json()
        assert statement["total_credited"] == 250_000_000 and len(statement["entries"]) == 250
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"]) == (250, 250_000_000)
        assert ledger["by_counterparty"][VCB]["credits"] == 250

    async def test_status_of_transfer_and_of_unknown_transfer(self, sandbox) -> None:
        [account] = await seed(sandbox, 1)
        await post_batch(sandbox, batch("B2", transfers([account], 777_000)))
        status = (await sandbox.http.get(f"/banks/{VCB}/transfers/E000000")).json()
        assert status["status"] == "SETTLED" and status["amount"] == 777_000
        assert status["bank_reference"].startswith("FT") and status["settled_at"].endswith("Z")
        missing = await sandbox.http.get(f"/banks/{VCB}/transfers/NOPE")
        assert (missing.status_code, missing.json()) == (404, {"code": "NOT_FOUND"})
        other_bank = await sandbox.http.get("/banks/970418/transfers/E000000")
        assert other_bank.status_code == 404

    async def test_control_totals_mismatch_refuses_the_whole_batch(self, sandbox) -> None:
        accounts = await seed(sandbox, 2)
        for wrong in ({"control_count": 3}, {"control_sum": 1}):
            answer = await post_batch(sandbox, batch("B3", transfers(accounts), **wrong))
            assert (answer.status_code, answer.json()) == (422, {"code": "CONTROL_TOTALS_MISMATCH"})
        assert (await sandbox.admin.ledger())["transfers"] == 0

    async def test_bad_items_rejected_one_by_one(self, sandbox) -> None:
        accounts = await seed(sandbox, 4)
        items = transfers(accounts)
        items[1]["amount"] = 0
        items[2]["currency"] = "USD"
        items[3]["end_to_end_id"] = items[0]["end_to_end_id"]
        answer = (await post_batch(sandbox, batch("B4", items))).json()
        assert answer["accepted"] == ["E000000"]
        assert answer["rejected"] == [
            {"end_to_end_id": "E000001", "reason_code": "AM12"},
            {"end_to_end_id": "E000002", "reason_code": "AM03"},
            {"end_to_end_id": "E000000", "reason_code": "AM05"},
        ]

    async def test_fractional_amount_is_an_invalid_request(self, sandbox) -> None:
        items = transfers(["1"])
        items[0]["amount"] = 1000.5
        answer = await post_batch(sandbox, batch("B5", items, control_sum=1000))
        assert (answer.status_code, answer.json()["code"]) == (422, "INVALID_REQUEST")

    async def test_resend_changes_nothing_and_other_batch_counts_an_attempt(self, sandbox) -> None:
        accounts = await seed(sandbox, 10)
        body = batch("B6", transfers(accounts))
        await post_batch(sandbox, body)
        again = await post_batch(sandbox, body)
        assert len(again.json()["accepted"]) == 10
        assert (await sandbox.admin.ledger())["duplicates"] == 0

        await post_batch(sandbox, batch("B7", transfers(accounts[:3])))

        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["total_credited"], ledger["duplicates"]) == (
            10,
            10_000_000,
            3,
        )
        entries = (await sandbox.admin.ledger_entries(limit=3, offset=0))["entries"]
        assert [e["times_received"] for e in entries] == [3, 3, 3]
        assert all(e["credited_at"] for e in entries)
        assert (await sandbox.admin.ledger_entries(limit=5, offset=8))["total"] == 10

    async def test_failed_outcomes_follow_account_status(self, sandbox) -> None:
        await sandbox.admin.seed_accounts(
            [
                {"bin": VCB, "account_number": "C", "holder_name": "A", "status": "CLOSED"},
                {"bin": VCB, "account_number": "B", "holder_name": "A", "status": "BLOCKED"},
                {"bin": VCB, "account_number": "D", "holder_name": "A", "status": "DECEASED"},
            ]
        )
        await post_batch(sandbox, batch("B8", transfers(["C", "B", "D", "unknown"])))
        outcomes = await sandbox.callbacks.wait_for([f"E{n:06d}" for n in range(4)])
        assert [o[0]["reason_code"] for o in outcomes.values()] == ["AC04", "AC06", "MD07", "AC01"]
        assert {o[0]["type"] for o in outcomes.values()} == {"transfer.failed"}

    async def test_json_transfers_refused_by_a_file_bank(self, sandbox) -> None:
        answer = await post_batch(sandbox, batch("B9", transfers(["1"])), bin_="970405")
        assert answer.json()["code"] == "CHANNEL_NOT_SUPPORTED"


class TestFaults:
    async def test_faults_round_trip_and_validation(self, sandbox) -> None:
        answer = await sandbox.http.put("/admin/faults", json={"error_5xx_rate": 0.5, "seed": 1})
        assert answer.json()["error_5xx_rate"] == 0.5
        assert (await sandbox.http.get("/admin/faults")).json()["seed"] == 1
        assert (
            await sandbox.http.put("/admin/faults", json={"error_5xx_rate": 2})
        ).status_code == 422
        assert (await sandbox.http.put("/admin/faults", json={"typo_rate": 1})).status_code == 422

    async def test_503_processes_nothing(self, sandbox) -> None:
        accounts = await seed(sandbox, 3)
        await sandbox.admin.set_faults(error_5xx_rate=1)
        answer = await post_batch(sandbox, batch("B10", transfers(accounts)))
        assert answer.status_code == 503
        assert (await sandbox.admin.ledger())["transfers"] == 0

    async def test_seeded_faults_are_deterministic(self, sandbox) -> None:
        async def run() -> list[int]:
            await sandbox.admin.set_faults(error_5xx_rate=0.5, seed=42)
            codes = []
            for n in range(20):
                codes.append((await post_batch(sandbox, batch(f"D{n}", []))).status_code)
            return codes

        first, second = await run(), await run()
        assert first == second and set(first) == {202, 503}

    async def test_duplicate_deliveries_repeat_delivery_and_event_ids(self, sandbox) -> None:
        accounts = await seed(sandbox, 5)
        await sandbox.admin.set_faults(duplicate_callback_rate=1)
        await post_batch(sandbox, batch("B11", transfers(accounts)))
        await sandbox.admin.wait_callbacks_idle()
        deliveries = sandbox.callbacks.deliveries
        assert len(deliveries) == 2 and deliveries[0][2] == deliveries[1][2]
        assert [e["event_id"] for e in deliveries[0][3]] == [
            e["event_id"] for e in deliveries[1][3]
        ]

    async def test_reordered_deliveries_arrive_out_of_order(self, sandbox) -> None:
        accounts = await seed(sandbox, 60)
        await sandbox.admin.set_faults(reorder_callback_rate=0.5, seed=11)
        for n in range(0, 60, 5):  # twelve small batches, one delivery each
            await post_batch(
                sandbox, batch(f"R{n}", transfers(accounts[n : n + 5], prefix=f"R{n:02d}-"))
            )
            await asyncio.sleep(0.03)
        await sandbox.admin.wait_callbacks_idle()
        arrival = [d[3][0]["end_to_end_id"][:3] for d in sandbox.callbacks.deliveries]
        assert len(sandbox.callbacks.by_end_to_end_id) == 60
        assert arrival != sorted(arrival)

    async def test_refused_deliveries_retried_then_abandoned(self, sandbox) -> None:
        accounts = await seed(sandbox, 1)
        sandbox.callbacks.fail_next = 10
        await post_batch(sandbox, batch("B12", transfers(accounts)))
        stats = await sandbox.admin.wait_callbacks_idle()
        assert (stats["failed_attempts"], stats["abandoned_deliveries"]) == (4, 1)
        sandbox.callbacks.fail_next = 0

    async def test_latency_applies_to_every_bank_call(self, sandbox) -> None:
        await sandbox.admin.set_faults(latency_ms=150)
        started = time.monotonic()
        await sandbox.http.get(f"/banks/{VCB}/transfers/X")
        assert time.monotonic() - started >= 0.15

    async def test_reset_clears_everything(self, sandbox) -> None:
        accounts = await seed(sandbox, 2)
        await post_batch(sandbox, batch("B13", transfers(accounts)))
        await sandbox.admin.set_faults(duplicate_callback_rate=0.5, seed=5)
        await sandbox.admin.reset()
        ledger = await sandbox.admin.ledger()
        assert (ledger["credits"], ledger["transfers"]) == (0, 0)
        faults = (await sandbox.http.get("/admin/faults")).json()
        assert faults["error_5xx_rate"] == 0 and faults["seed"] is None
