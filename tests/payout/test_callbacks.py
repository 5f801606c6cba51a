"""Signed callbacks: duplicates and reordering change nothing; forged, stale, replayed and
other-bank callbacks are refused and change nothing; an amount that differs is flagged."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import orjson
from sqlalchemy import func, select

from services.payout.adapters.orm import callback_events, installments, payment_anomalies
from shared.webhook_signing import dev_secret, signed_headers
from tests.payout.harness import BIDV, VCB, accounts, intake_events, people, verified
from tests.support.waiting import wait_until

PERIOD = "2031-04"


def delivery(delivery_id: str, events: list[dict]) -> bytes:
    return orjson.dumps({"delivery_id": delivery_id, "events": events})


def settled_event(event_id: str, e2e: str, amount: int) -> dict:
    return {
        "event_id": event_id,
        "type": "transfer.settled",
        "end_to_end_id": e2e,
        "amount": amount,
        "bank_reference": "FT-TEST",
        "reason_code": None,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


async def settled_cycle(payout, sandbox, count: int = 20, **faults):
    stack = await payout()
    persons = people(count, bank_bin=VCB)
    await sandbox.seed_accounts(accounts(persons))
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
    await verified(stack, persons)
    if faults:
        await sandbox.set_faults(**faults)
    await stack.start_cycle(PERIOD)
    await stack.wait_complete(PERIOD)
    await sandbox.wait_callbacks_idle(timeout=20)
    return stack, persons


async def snapshot(stack) -> tuple:
    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(installments.c.id, installments.c.state, installments.c.settled_at).order_by(
                    installments.c.id
                )
            )
        ).all()
        seen = (
            await session.execute(select(func.count()).select_from(callback_events))
        ).scalar_one()
    return tuple(rows), seen, await stack.outbox_types()


class TestDuplicatesAndReordering:
    async def test_duplicate_and_reordered_callbacks_change_nothing(self, payout, sandbox):
        stack, _ = await settled_cycle(
            payout, sandbox, 40, duplicate_callback_rate=1.0, reorder_callback_rate=1.0, seed=7
        )
        stats = await sandbox.webhooks()
        assert stats["duplicate_deliveries"] >= 1
        states = await stack.states(PERIOD)
        assert states == {"SETTLED": 40}
        types = await stack.outbox_types()
        assert types["payment-settled"] == 40
        bank = await sandbox.ledger()
        assert bank["credits"] == 40 and bank["duplicates"] == 0

    async def test_returned_after_settled_is_final_and_late_settlement_changes_nothing(
        self, payout, sandbox
    ):
        stack, _ = await settled_cycle(payout, sandbox, 3)
        async with stack.client() as client:
            items = (await client.get("/v1/installments", params={"period": PERIOD})).json()[
                "items"
            ]
        e2e = items[0]["end_to_end_id"]
        await sandbox.return_transfer(e2e, "AC04")

        async def returned():
            return (await stack.states(PERIOD)).get("RETURNED") == 1

        await wait_until(returned, timeout=15, message="return applied")
        # The original settlement delivered again (as a new delivery) changes nothing.
        body = delivery("DLV-LATE-1", [settled_event("EVT-LATE-1", e2e, items[0]["amount"])])
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            response = await client.post(
                f"/v1/webhooks/banks/{VCB}",
                content=body,
                headers=signed_headers(VCB, dev_secret(VCB), body),
            )
        assert response.status_code == 200
        assert response.json()["applied"] == 0
        assert await stack.states(PERIOD) == {"SETTLED": 2, "RETURNED": 1}
        assert (await stack.outbox_types())["payment-returned"] == 1


class TestRefusedCallbacks:
    async def test_forged_stale_replayed_and_other_bank_callbacks_are_refused(
        self, payout, sandbox
    ):
        stack, _ = await settled_cycle(payout, sandbox, 5)
        async with stack.client() as api:
            items = (await api.get("/v1/installments", params={"period": PERIOD})).json()["items"]
        e2e, amount = items[0]["end_to_end_id"], items[0]["amount"]
        before = await snapshot(stack)
        body = delivery(
            "DLV-FORGED",
            [
                {
                    **settled_event("EVT-FORGED", e2e, amount),
                    "type": "transfer.returned",
                    "reason_code": "AC04",
                }
            ],
        )
        url = f"/v1/webhooks/banks/{VCB}"
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            forged = await client.post(
                url, content=body, headers=signed_headers(VCB, "not-the-secret", body)
            )
            stale = await client.post(
                url,
                content=body,
                headers=signed_headers(
                    VCB, dev_secret(VCB), body, timestamp=int(time.time()) - 301
                ),
            )
            other_bank = await client.post(
                url, content=body, headers=signed_headers(BIDV, dev_secret(BIDV), body)
            )
            other_secret = await client.post(
                url,
                content=body,
                headers={**signed_headers(BIDV, dev_secret(BIDV), body), "X-Counterparty": VCB},
            )
            unsigned = await client.post(url, content=body)
            tampered_headers = signed_headers(VCB, dev_secret(VCB), body)
            tampered = await client.post(
                url, content=body.replace(b"AC04", b"AC06"), headers=tampered_headers
            )
        for response, reason in (
            (forged, "bad_signature"),
            (stale, "stale_timestamp"),
            (other_bank, "wrong_counterparty"),
            (other_secret, "bad_signature"),
            (unsigned, "missing_signature"),
            (tampered, "bad_signature"),
        ):
            assert response.status_code == 401, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["reason"] == reason
        assert await snapshot(stack) == before

        # A genuine event id replayed (the sandbox's own settlement event): refused, nothing changes.
        async with stack.runtime.session_factory() as session:
            seen = (
                await session.execute(
                    select(callback_events.c.event_id).where(callback_events.c.end_to_end_id == e2e)
                )
            ).scalar_one()
        replay = delivery(
            "DLV-REPLAY",
            [
                {
                    **settled_event(seen, e2e, amount),
                    "type": "transfer.returned",
                    "reason_code": "AC04",
                }
            ],
        )
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            response = await client.post(
                url, content=replay, headers=signed_headers(VCB, dev_secret(VCB), replay)
            )
        assert response.status_code == 200
        assert response.json()["replayed"] == 1 and response.json()["applied"] == 0
        assert await snapshot(stack) == before

    async def test_settlement_with_another_amount_is_flagged_not_applied(self, payout, sandbox):
        stack = await payout(run_workers=False)
        persons = people(1, bank_bin=VCB)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        stack.start_workers()
        await verified(stack, persons)
        stack.stop.set()  # no submission: the callback below is the only news
        await stack.start_cycle(PERIOD)
        async with stack.client() as api:
            item = (await api.get("/v1/installments", params={"period": PERIOD})).json()["items"][0]
        body = delivery(
            "DLV-AMOUNT", [settled_event("EVT-AMOUNT", item["end_to_end_id"], item["amount"] + 1)]
        )
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            response = await client.post(
                f"/v1/webhooks/banks/{VCB}",
                content=body,
                headers=signed_headers(VCB, dev_secret(VCB), body),
            )
        assert response.status_code == 200 and response.json()["flagged"] == 1
        assert await stack.states(PERIOD) == {"SCHEDULED": 1}
        async with stack.runtime.session_factory() as session:
            kinds = (await session.execute(select(payment_anomalies.c.kind))).scalars().all()
        assert kinds == ["AMOUNT_MISMATCH"]

    async def test_malformed_and_unknown_counterparty_callbacks_are_problems(self, payout, sandbox):
        stack = await payout(run_workers=False)
        body = b"not json"
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            malformed = await client.post(
                f"/v1/webhooks/banks/{VCB}",
                content=body,
                headers=signed_headers(VCB, dev_secret(VCB), body),
            )
            unknown = await client.post("/v1/webhooks/banks/ABC", content=body)
            wrong_kind = await client.post(f"/v1/webhooks/iso/{VCB}", content=body)
        assert malformed.status_code == 400
        assert unknown.status_code == 404 and wrong_kind.status_code == 404
