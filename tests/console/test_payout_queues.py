"""Payout's routes for the officers' console, on PostgreSQL and Kafka with the bank sandbox:
the accounts to fix (failed verification, flagged), and the post office's cash lists with the
handover or return of each item, limited to the staff member's communes, idempotent, through
the same outcome machinery as the post office's signed confirmation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.payout.adapters.orm import callback_events, installments
from tests.payout.harness import PayoutStack, accounts, intake_events, people, verified
from tests.support import tokens
from tests.support.revalidation import nobody_held
from tests.support.waiting import wait_until

PERIOD = "2031-03"
MINE, OTHER = "08707", "09154"  # a ward the post-office staff serve, and a commune they do not


def person_client(stack: PayoutStack, sub: str, *roles: str, **claims: Any) -> httpx.AsyncClient:
    token = tokens.token(sub=sub, kind="person", roles=set(roles), **claims)
    return httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def post_office(
    stack: PayoutStack, communes: frozenset[str] = frozenset({MINE})
) -> httpx.AsyncClient:
    return person_client(stack, "bd-staff-1", "post-office", agency="BHXH", communes=communes)


def events_in(commune: str, persons) -> list:
    out = []
    for person in persons:
        for event in intake_events(person, start_period=PERIOD):
            if hasattr(event, "commune_code"):
                event = event.model_copy(update={"commune_code": commune})
            out.append(event)
    return out


async def cash_cycle(stack: PayoutStack, sandbox) -> dict[str, list[str]]:
    """Two people paid in cash in MINE, one in OTHER; the cycle prepared, every item kept pending
    at the post office, approved and sent. Returns the end-to-end ids per commune."""
    tag = uuid.uuid4().hex[:6]
    mine, other = people(2, tag=tag), people(1, start=2, tag=tag)
    for person in (*mine, *other):
        person.method = "CASH_POST_OFFICE"
    await stack.feed(events_in(MINE, mine) + events_in(OTHER, other))
    await verified(stack, [*mine, *other])
    await stack.prepare_cycle(PERIOD)
    view = await stack.progress(PERIOD)
    if view["approval_state"] == "AWAITING_REVALIDATION":
        assert stack.runtime is not None
        await nobody_held(stack.runtime, PERIOD)
    assert stack.runtime is not None
    async with stack.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(installments.c.id, installments.c.commune_code).where(
                    installments.c.period == PERIOD
                )
            )
        ).all()
    ids: dict[str, list[str]] = {MINE: [], OTHER: []}
    for installment_id, commune in rows:
        ids[commune].append(f"PAY-{installment_id}-1")
    await sandbox.set_cash_outcomes(dict.fromkeys(ids[MINE] + ids[OTHER], "PENDING"))
    await stack.approve_all(PERIOD)

    async def listed() -> bool:
        async with stack.client("payout:read") as client:
            answer = (await client.get("/v1/cash-lists", params={"period": PERIOD})).json()
        return sum(list_["count"] for list_ in answer["lists"]) == 3

    await wait_until(listed, timeout=30, message="the cash lists are at the post office")
    return ids


@pytest.fixture
async def stack(payout) -> PayoutStack:
    return await payout()


class TestCashLists:
    async def test_staff_see_their_communes_and_others_see_every_commune(self, stack, sandbox):
        ids = await cash_cycle(stack, sandbox)
        async with post_office(stack) as staff:
            answer = await staff.get("/v1/cash-lists", params={"period": PERIOD})
        assert answer.status_code == 200, answer.text
        [only] = answer.json()["lists"]
        assert only["commune_code"] == MINE and only["count"] == 2
        assert sorted(i["end_to_end_id"] for i in only["items"]) == sorted(ids[MINE])
        item = only["items"][0]
        assert item["state"] == "SUBMITTED" and item["current"] is True
        assert item["next_step"] == "HAND_OVER"
        # No pii:read: the payee's name is masked.
        assert "*" in item["account_name"]
        async with stack.client("payout:read") as operator:
            everything = (await operator.get("/v1/cash-lists", params={"period": PERIOD})).json()
            one_commune = (
                await operator.get("/v1/cash-lists", params={"period": PERIOD, "commune": OTHER})
            ).json()
        assert sorted(lst["commune_code"] for lst in everything["lists"]) == [MINE, OTHER]
        assert [lst["commune_code"] for lst in one_commune["lists"]] == [OTHER]
        async with post_office(stack) as staff:
            theirs = await staff.get("/v1/cash-lists", params={"commune": OTHER})
        assert theirs.json()["lists"] == []  # asked for another commune: nothing of it

    async def test_a_handover_is_recorded_once_with_the_person_and_a_return_cannot_follow(
        self, stack, sandbox
    ):
        ids = await cash_cycle(stack, sandbox)
        e2e = ids[MINE][0]
        paid_on = date.today().isoformat()
        body = {"paid_on": paid_on, "staff_id": "BD08707-03"}
        async with post_office(stack) as staff:
            first = await staff.post(f"/v1/cash-lists/items/{e2e}/handover", json=body)
            again = await staff.post(f"/v1/cash-lists/items/{e2e}/handover", json=body)
            back = await staff.post(
                f"/v1/cash-lists/items/{e2e}/return", json={"reason": "NOT_FOUND"}
            )
        assert first.status_code == 200, first.text
        assert first.json()["state"] == "PAID_CASH" and first.json()["replayed"] is False
        assert first.json()["paid_on"] == paid_on and first.json()["staff_id"] == "BD08707-03"
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert back.status_code == 409, back.text
        assert back.headers["content-type"].startswith("application/problem+json")
        assert back.json()["state"] == "PAID_CASH"
        assert stack.runtime is not None
        async with stack.runtime.session_factory() as session:
            kept = (
                await session.execute(
                    select(callback_events.c.event_id, callback_events.c.delivery_id).where(
                        callback_events.c.end_to_end_id == e2e
                    )
                )
            ).all()
        # One record of the handover, naming the person who made it; the refused return left none.
        assert [(row[0], row[1]) for row in kept] == [
            (f"console:handover:{e2e}", "console:bd-staff-1")
        ]
        outbox = await stack.outbox_types()
        assert any("cash" in kind.lower() for kind in outbox), outbox  # PaymentPaidInCash

    async def test_the_same_handover_sent_at_once_from_two_tabs_is_applied_once(
        self, stack, sandbox
    ):
        ids = await cash_cycle(stack, sandbox)
        e2e = ids[MINE][0]
        body = {"paid_on": date.today().isoformat(), "staff_id": "BD08707-01"}
        async with post_office(stack) as one, post_office(stack) as two:
            answers = await asyncio.gather(
                *(
                    client.post(f"/v1/cash-lists/items/{e2e}/handover", json=body)
                    for client in (one, two, one, two)
                )
            )
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        assert sorted(a.json()["replayed"] for a in answers) == [False, True, True, True]
        assert {a.json()["state"] for a in answers} == {"PAID_CASH"}
        assert stack.runtime is not None
        async with stack.runtime.session_factory() as session:
            kept = (
                await session.execute(
                    select(callback_events.c.event_id).where(callback_events.c.end_to_end_id == e2e)
                )
            ).all()
        assert len(kept) == 1

    async def test_a_handover_and_a_return_at_once_leave_one_of_them(self, stack, sandbox):
        ids = await cash_cycle(stack, sandbox)
        e2e = ids[MINE][1]
        async with post_office(stack) as one, post_office(stack) as two:
            handover, back = await asyncio.gather(
                one.post(
                    f"/v1/cash-lists/items/{e2e}/handover",
                    json={"paid_on": date.today().isoformat(), "staff_id": "BD-1"},
                ),
                two.post(f"/v1/cash-lists/items/{e2e}/return", json={"reason": "NOT_FOUND"}),
            )
        assert sorted([handover.status_code, back.status_code]) == [200, 409], (
            handover.text,
            back.text,
        )
        winner = handover if handover.status_code == 200 else back
        async with stack.client("payout:read") as operator:
            listed = (await operator.get("/v1/cash-lists", params={"period": PERIOD})).json()
        [item] = [i for lst in listed["lists"] for i in lst["items"] if i["end_to_end_id"] == e2e]
        assert item["state"] == winner.json()["state"]

    async def test_a_return_records_the_post_offices_reason(self, stack, sandbox):
        ids = await cash_cycle(stack, sandbox)
        e2e = ids[MINE][1]
        async with post_office(stack) as staff:
            answer = await staff.post(
                f"/v1/cash-lists/items/{e2e}/return", json={"reason": "REFUSED"}
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "RETURNED" and answer.json()["reason_code"] == "REFUSED"
        assert answer.json()["next_step"] == "DECIDE_REPAYMENT"

    async def test_another_communes_item_is_refused_and_unchanged(self, stack, sandbox):
        ids = await cash_cycle(stack, sandbox)
        e2e = ids[OTHER][0]
        async with post_office(stack) as staff:
            answer = await staff.post(
                f"/v1/cash-lists/items/{e2e}/handover",
                json={"paid_on": date.today().isoformat(), "staff_id": "BD-1"},
            )
        assert answer.status_code == 403, answer.text
        assert "commune" in answer.json()["detail"]
        async with stack.client("payout:read") as operator:
            listed = (
                await operator.get("/v1/cash-lists", params={"period": PERIOD, "commune": OTHER})
            ).json()
        assert listed["lists"][0]["items"][0]["state"] == "SUBMITTED"

    async def test_bad_records_are_refused_with_problems(self, stack, sandbox):
        ids = await cash_cycle(stack, sandbox)
        e2e = ids[MINE][0]
        tomorrow = (date.today() + timedelta(days=2)).isoformat()
        async with post_office(stack) as staff:
            future = await staff.post(
                f"/v1/cash-lists/items/{e2e}/handover",
                json={"paid_on": tomorrow, "staff_id": "BD-1"},
            )
            no_staff = await staff.post(
                f"/v1/cash-lists/items/{e2e}/handover", json={"paid_on": date.today().isoformat()}
            )
            bad_reason = await staff.post(
                f"/v1/cash-lists/items/{e2e}/return", json={"reason": "LOST"}
            )
            unknown = await staff.post(
                "/v1/cash-lists/items/PAY-999999-1/handover",
                json={"paid_on": date.today().isoformat(), "staff_id": "BD-1"},
            )
        assert future.status_code == 422 and "future" in future.json()["detail"]
        assert no_staff.status_code == 422 and bad_reason.status_code == 422
        assert unknown.status_code == 404
        for answer in (future, no_staff, bad_reason, unknown):
            assert answer.headers["content-type"].startswith("application/problem+json")

    async def test_only_post_office_staff_record_cash(self, stack, sandbox):
        async with person_client(stack, "bhxh-checker", "checker", agency="BHXH") as checker:
            answer = await checker.post(
                "/v1/cash-lists/items/PAY-1-1/handover",
                json={"paid_on": date.today().isoformat(), "staff_id": "BD-1"},
            )
            listed = await checker.get("/v1/cash-lists")
        assert answer.status_code == 403
        assert listed.status_code == 200  # payout:read reads the lists
        async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
            assert (await anonymous.get("/v1/cash-lists")).status_code == 401


class TestAccountsToFix:
    async def test_failed_and_flagged_accounts_are_listed_masked_with_the_next_step(
        self, stack, sandbox
    ):
        tag = uuid.uuid4().hex[:6]
        good, missing = people(1, tag=tag), people(1, start=1, tag=tag)
        await sandbox.seed_accounts(accounts(good))  # the other account is unknown to its bank
        await stack.feed(events_in(MINE, good) + events_in(OTHER, missing))
        await verified(stack, [*good, *missing])
        async with stack.client("payout:read") as reader:
            answer = await reader.get("/v1/payment-methods")
            failed = await reader.get("/v1/payment-methods", params={"status": "FAILED"})
            flagged = await reader.get("/v1/payment-methods", params={"status": "FLAGGED"})
            bad = await reader.get("/v1/payment-methods", params={"status": "VERIFIED"})
        assert answer.status_code == 200, answer.text
        [item] = answer.json()["items"]
        assert item["beneficiary_id"] == missing[0].beneficiary_id
        assert item["status"] == "FAILED" and item["commune_code"] == OTHER
        assert item["account_number"] != missing[0].account_number
        assert item["account_number"].endswith(missing[0].account_number[-4:])
        assert item["next_step"] == "FIX_ACCOUNT" and "cash" in item["next_step_text"]
        assert failed.json()["items"] == [item] and flagged.json()["items"] == []
        assert bad.status_code == 422
        async with stack.client("payout:read", "pii:read") as privileged:
            seen = (await privileged.get("/v1/payment-methods")).json()["items"][0]
        assert seen["account_number"] == missing[0].account_number
        # A person bound to communes sees their communes' people only; an agency its own.
        async with person_client(
            stack, "cb-xa", "commune-official", agency="DOLISA", communes={MINE}
        ) as official:
            assert (await official.get("/v1/payment-methods")).json()["items"] == []
        async with person_client(stack, "bhxh-maker", "maker", agency="BHXH") as maker:
            assert len((await maker.get("/v1/payment-methods")).json()["items"]) == 1
        async with person_client(stack, "esc-maker", "maker", agency="ESC") as maker:
            assert (await maker.get("/v1/payment-methods")).json()["items"] == []

    async def test_a_cursor_not_given_out_is_refused(self, stack):
        async with stack.client("payout:read") as reader:
            answer = await reader.get("/v1/payment-methods", params={"cursor": "AA"})
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("application/problem+json")
