"""The whole path on PostgreSQL and Kafka: a cycle is prepared and nothing is sent; a
self-approval, a checker of another agency, a client, an approval over the envelope and one on
a stale digest are refused with a problem that says why; a second officer approves exactly what
awaits, the batches are released, sent and settled; a part rejected stays unsent."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from services.payout.adapters.orm import batches, cycle_approvals, outbox
from services.payout.service_layer import cycles as cycle_service
from shared.uow import UnitOfWork, unit_of_work
from tests.payout.harness import (
    accounts,
    intake_events,
    method_event,
    people,
    revalidate,
    verified,
)

PERIOD = "2031-06"
PROBLEMS = "https://benefits.example.vn/problems/"


async def prepared_stack(payout, sandbox, count: int):
    stack = await payout()
    persons = people(count)
    await sandbox.seed_accounts(accounts(persons))
    await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
    await verified(stack, persons)
    async with stack.person("minh", "maker", "checker", agency="BHXH") as maker:
        response = await maker.post("/v1/cycles", json={"period": PERIOD})
    assert response.status_code == 201, response.text
    return stack, persons


async def approve(stack, sub: str, *roles: str, agency: str = "BHXH", **body):
    async with stack.person(sub, *roles, agency=agency) as client:
        return await client.post(f"/v1/cycles/{PERIOD}/approvals", json=body)


async def set_envelope(stack, amount: int) -> None:
    async with stack.person("admin", "administrator") as admin:
        response = await admin.put(
            "/v1/envelopes",
            json={
                "envelopes": [
                    {"period": PERIOD, "agency": "BHXH", "scheme": "PENSION", "amount": amount}
                ]
            },
        )
    assert response.status_code == 200, response.text


async def batch_states(stack) -> list[tuple[str, int | None]]:
    async with stack.runtime.session_factory() as session:
        rows = await session.execute(
            select(batches.c.state, batches.c.approval_id).order_by(batches.c.batch_id)
        )
    return [(state, approval) for state, approval in rows.all()]


class TestApprovalPath:
    async def test_prepare_refusals_second_officer_release_settle(self, payout, sandbox):
        stack, persons = await prepared_stack(payout, sandbox, 6)
        # Not approvable before intake's revalidation of the period arrived.
        view = await stack.progress(PERIOD)
        assert view["approval_state"] == "AWAITING_REVALIDATION"
        digest = view["agencies"]["BHXH"]["awaiting_approval"]["digest"]
        early = await approve(stack, "lan", "checker", digest=digest)
        assert early.status_code == 409 and early.json()["type"] == PROBLEMS + "cycle-not-prepared"
        assert "revalidation" in early.json()["detail"]
        async with stack.client("payout:read") as client:
            queue = (await client.get("/v1/cycles", params={"awaiting": "true"})).json()
        assert queue["items"] == [], "not in the checkers' queue before it can be approved"
        await revalidate(stack.runtime, PERIOD)

        view = await stack.progress(PERIOD)
        assert view["approval_state"] == "PREPARED"
        part = view["agencies"]["BHXH"]
        awaiting = part["awaiting_approval"]
        amount = sum(p.amount for p in persons)
        assert (awaiting["count"], awaiting["amount"]) == (6, amount)
        assert awaiting["prepared_by"] == ["minh"]
        assert part["totals"]["by_scheme"] == {"PENSION": {"count": 6, "amount": amount}}
        assert part["differences"]["new"] == {"count": 6, "amount": amount}
        assert part["envelopes"]["PENSION"] == {"envelope": None, "approved": 0, "remaining": None}
        # Nothing is sent: no batch can be claimed, the bank has received nothing.
        assert await stack.workers.submit_once() is False
        assert {state for state, _ in await batch_states(stack)} == {"PREPARED"}
        assert (await sandbox.ledger())["credits"] == 0
        # The checkers' queue lists it with the agency whose part awaits them.
        async with stack.client("payout:read") as client:
            queue = (await client.get("/v1/cycles", params={"awaiting": "true"})).json()
        assert [(c["period"], c["awaiting_approval"]) for c in queue["items"]] == [
            (PERIOD, ["BHXH"])
        ]
        assert queue["items"][0]["approval_state"] == "PREPARED"

        # The preparer, though a checker too, may not approve it.
        own = await approve(stack, "minh", "maker", "checker", digest=awaiting["digest"])
        assert own.status_code == 403 and own.json()["type"] == PROBLEMS + "four-eyes"
        assert own.headers["content-type"].startswith("application/problem+json")
        # A checker of another agency, and a machine client, may not either.
        async with stack.person("hoa", "checker", agency="DOLISA") as client:
            other = await client.post(
                f"/v1/cycles/{PERIOD}/approvals",
                json={"agency": "BHXH", "digest": awaiting["digest"]},
            )
        assert other.status_code == 403 and other.json()["type"] == PROBLEMS + "other-agency"
        async with stack.client("cycles:approve", "agency:BHXH") as client:
            machine = await client.post(
                f"/v1/cycles/{PERIOD}/approvals", json={"digest": awaiting["digest"]}
            )
        assert machine.status_code == 403
        assert machine.json()["type"] == PROBLEMS + "approver-not-a-person"

        # No envelope, then one too small: refused, naming the scheme and the excess.
        missing = await approve(stack, "lan", "checker", digest=awaiting["digest"])
        assert missing.status_code == 422 and missing.json()["type"] == PROBLEMS + "over-envelope"
        await set_envelope(stack, amount - 1)
        over = await approve(stack, "lan", "checker", digest=awaiting["digest"])
        assert over.status_code == 422 and over.json()["type"] == PROBLEMS + "over-envelope"
        assert over.json()["schemes"] == [
            {
                "scheme": "PENSION",
                "envelope": amount - 1,
                "approved": 0,
                "requested": amount,
                "excess": 1,
            }
        ]
        await set_envelope(stack, amount)

        # A stop after the totals were shown changes what awaits: the old digest is refused.
        async with unit_of_work(
            stack.runtime.session_factory, stack.runtime.outbox, "tests", kind=UnitOfWork
        ) as uow:
            cancelled = await cycle_service.stop_entitlements(
                uow,
                from_period=PERIOD,
                reason="DECEASED",
                entitlement_ids=[persons[0].entitlement_id],
            )
        assert cancelled == 1
        stale = await approve(stack, "lan", "checker", digest=awaiting["digest"])
        assert stale.status_code == 409 and stale.json()["type"] == PROBLEMS + "stale-approval"
        assert "changed since these totals were shown" in stale.json()["detail"]
        assert (await sandbox.ledger())["credits"] == 0

        # A second officer approves exactly what awaits now.
        current = (await stack.progress(PERIOD))["agencies"]["BHXH"]["awaiting_approval"]
        assert (current["count"], current["amount"]) == (5, amount - persons[0].amount)
        approved = await approve(stack, "lan", "checker", digest=current["digest"])
        assert approved.status_code == 201, approved.text
        body = approved.json()
        assert (body["decision"], body["count"], body["amount"]) == (
            "APPROVE",
            5,
            current["amount"],
        )
        assert {(s, a) for s, a in await batch_states(stack)} <= {
            ("READY", body["id"]),
            ("SENDING", body["id"]),
            ("SUBMITTED", body["id"]),
            ("COMPLETED", body["id"]),
        }
        again = await approve(stack, "lan", "checker", digest=current["digest"])
        assert again.status_code == 409  # nothing awaits any more

        done = await stack.wait_complete(PERIOD, timeout=60, approve=False)
        assert done["approval_state"] == "APPROVED"
        assert await stack.states(PERIOD) == {"SETTLED": 5, "CANCELLED": 1}
        bank = await sandbox.ledger()
        assert bank["credits"] == 5 and bank["duplicates"] == 0

        async with stack.client("payout:read") as client:
            trail = (await client.get(f"/v1/cycles/{PERIOD}/approvals")).json()["items"]
            waiting = (await client.get("/v1/cycles", params={"awaiting": "true"})).json()
            listed = (await client.get("/v1/cycles")).json()
            bad = await client.get("/v1/cycles", params={"cursor": "not-ours!"})
        assert waiting["items"] == [], "nothing awaits once approved"
        assert [(c["period"], c["awaiting_approval"]) for c in listed["items"]] == [(PERIOD, [])]
        assert listed["items"][0]["prepared_by"] == "minh"
        assert bad.status_code == 400
        assert [(a["decision"], a["decided_by"], a["prepared_by"], a["count"]) for a in trail] == [
            ("APPROVE", "lan", "minh", 5)
        ]
        use = done["agencies"]["BHXH"]["envelopes"]["PENSION"]
        assert use == {
            "envelope": amount,
            "approved": current["amount"],
            "remaining": persons[0].amount,
        }
        async with stack.runtime.session_factory() as session:
            events = (
                await session.execute(
                    select(outbox.c.event_type).where(outbox.c.event_type.like("%cycle%"))
                )
            ).scalars()
            kinds = sorted(e.split(".")[3] for e in events)
        assert kinds == ["cycle-approved", "cycle-opened"]

    async def test_a_rejected_part_stays_unsent_until_prepared_again_and_approved(
        self, payout, sandbox
    ):
        stack, _ = await prepared_stack(payout, sandbox, 3)
        await revalidate(stack.runtime, PERIOD)
        await set_envelope(stack, 10**9)
        digest = (await stack.progress(PERIOD))["agencies"]["BHXH"]["awaiting_approval"]["digest"]
        no_reason = await approve(stack, "lan", "checker", digest=digest, decision="REJECT")
        assert no_reason.status_code == 422
        rejected = await approve(
            stack, "lan", "checker", digest=digest, decision="REJECT", reason="amounts to check"
        )
        assert rejected.status_code == 201, rejected.text
        view = await stack.progress(PERIOD)
        assert view["agencies"]["BHXH"]["state"] == "REJECTED"
        async with stack.client("payout:read") as client:
            waiting = (await client.get("/v1/cycles", params={"awaiting": "true"})).json()
            [listed] = (await client.get("/v1/cycles")).json()["items"]
        # Sent back: listed with its part REJECTED, none awaiting approval.
        assert [c["parts"] for c in waiting["items"]] == [{"BHXH": "REJECTED"}]
        assert listed["parts"] == {"BHXH": "REJECTED"} and listed["awaiting_approval"] == []
        assert {s for s, _ in await batch_states(stack)} == {"PREPARED"}
        assert await stack.workers.submit_once() is False
        # Another maker prepares it again: now they are its preparer, and minh may approve it.
        async with stack.person("tuan", "maker", agency="BHXH") as maker:
            assert (await maker.post("/v1/cycles", json={"period": PERIOD})).status_code == 200
        view = await stack.progress(PERIOD)
        assert view["agencies"]["BHXH"]["awaiting_approval"]["prepared_by"] == ["tuan"]
        approved = await approve(stack, "minh", "maker", "checker", digest=digest)
        assert approved.status_code == 201, approved.text
        await stack.wait_complete(PERIOD, timeout=60, approve=False)
        assert await stack.states(PERIOD) == {"SETTLED": 3}
        async with stack.runtime.session_factory() as session:
            decisions = (
                await session.execute(
                    select(cycle_approvals.c.decision, cycle_approvals.c.reason).order_by(
                        cycle_approvals.c.id
                    )
                )
            ).all()
        assert [tuple(d) for d in decisions] == [("REJECT", "amounts to check"), ("APPROVE", None)]


class TestAfterApproval:
    async def test_a_payment_made_after_the_approval_awaits_its_own(self, payout, sandbox):
        """A hold released after the approval (the account verified late) never enters the
        approved batches: its attempt goes into a new PREPARED batch, a supplementary part."""
        stack = await payout(run_workers=False)
        persons = people(2)
        persons[0].method = "CASH_POST_OFFICE"
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        first = await stack.start_cycle(PERIOD)  # the bank account still awaits its verification
        assert first["by_state"]["ON_HOLD"]["count"] == 1
        [approved] = (await stack.progress(PERIOD))["agencies"]["BHXH"]["approvals"]
        assert (approved["count"], approved["amount"]) == (1, persons[0].amount)
        before = await batch_states(stack)
        assert before == [("READY", approved["id"])]

        while await stack.workers.verify_once():
            pass
        await stack.workers.batch_once()
        after = await batch_states(stack)
        assert ("READY", approved["id"]) in after and ("PREPARED", None) in after
        view = await stack.progress(PERIOD)
        supplement = view["agencies"]["BHXH"]["awaiting_approval"]
        assert (supplement["count"], supplement["amount"]) == (1, persons[1].amount)
        assert view["approval_state"] == "PREPARED"
        # The approved batch still carries exactly what was approved.
        async with stack.runtime.session_factory() as session:
            control = (
                await session.execute(
                    select(batches.c.control_count, batches.c.control_sum).where(
                        batches.c.approval_id == approved["id"]
                    )
                )
            ).all()
        assert [tuple(c) for c in control] == [(1, persons[0].amount)]
        await stack.approve_all(PERIOD)
        assert {s for s, _ in await batch_states(stack)} == {"READY"}

    async def test_an_account_changed_after_the_approval_never_rides_the_approved_batch(
        self, payout, sandbox
    ):
        """The beneficiary's account changes after the approval: when the approved batch is
        sent, the attempt is taken out (kept as withdrawn), and once the new account is
        verified its payment awaits an approval of its own."""
        stack = await payout(run_workers=False)
        [person] = people(1)
        await sandbox.seed_accounts(accounts([person]))
        await stack.feed(intake_events(person, start_period="2031-01"))
        while await stack.workers.verify_once():
            pass
        await stack.start_cycle(PERIOD)
        [approved] = (await stack.progress(PERIOD))["agencies"]["BHXH"]["approvals"]
        assert approved["count"] == 1

        person.account_number = "9" + person.account_number[1:]
        await sandbox.seed_accounts(accounts([person]))
        await stack.feed([method_event(person, method_id=person.method_id + "-new")])
        await stack.workers.submit_once()  # claims the approved batch: nothing left to send
        async with stack.runtime.session_factory() as session:
            row = (
                await session.execute(
                    select(
                        batches.c.state,
                        batches.c.control_count,
                        batches.c.withdrawn_count,
                        batches.c.withdrawn_sum,
                    ).where(batches.c.approval_id == approved["id"])
                )
            ).one()
        assert tuple(row) == ("CANCELLED", 0, 1, person.amount)
        assert (await sandbox.ledger())["credits"] == 0

        while await stack.workers.verify_once():
            pass
        await stack.workers.batch_once()
        view = await stack.progress(PERIOD)
        supplement = view["agencies"]["BHXH"]["awaiting_approval"]
        assert (supplement["count"], supplement["amount"]) == (1, person.amount)
        assert supplement["digest"] != approved["digest"]


class TestConcurrentApprovals:
    async def test_two_checkers_at_once_release_the_part_once(self, payout, sandbox):
        stack, persons = await prepared_stack(payout, sandbox, 4)
        await revalidate(stack.runtime, PERIOD)
        await set_envelope(stack, 10**9)
        digest = (await stack.progress(PERIOD))["agencies"]["BHXH"]["awaiting_approval"]["digest"]
        answers = await asyncio.gather(
            approve(stack, "lan", "checker", digest=digest),
            approve(stack, "hung", "checker", digest=digest),
            approve(stack, "mai", "checker", digest=digest),
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409], [a.text for a in answers]
        async with stack.runtime.session_factory() as session:
            decided = (
                await session.execute(select(cycle_approvals.c.count, cycle_approvals.c.amount))
            ).all()
        assert [tuple(d) for d in decided] == [(4, sum(p.amount for p in persons))]
        await stack.wait_complete(PERIOD, timeout=60, approve=False)
        assert (await sandbox.ledger())["credits"] == 4
