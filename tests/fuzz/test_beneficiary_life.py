"""A beneficiary's life across intake and payout as a hypothesis state machine: roll uploads,
portal claims and decisions (a second claim of a scheme the person already has included),
payment-method changes by the paying agency and by other agencies (through the API and
uploads), representatives whose authorisation does not cover the day the money is sent, stops,
closed accounts, monthly cycles, ambiguous bank answers (a reply later than the caller waits,
502/504 after the bank took the batch, an unreadable 2xx, 409 on a resend) and the cash
fallback. The real services run in-process on the embedded default; the bank is the sandbox,
whose own ledger is the truth about where money went.

After every cycle: at most one payment kept by the bank per person, scheme and period; every
installment is final or visibly on hold; every credit went where the paying agency said (or to
the post office when the policy pays in cash after a refusal), to a representative only on a day
their authorisation covers, and never for a period an entitlement was stopped from; and no money
leaves without an approval of exactly what left (every transfer is an attempt of a batch an
approval released before it was received; each approval released exactly its count and sum)."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fuzz.life import ANSWERS, FINAL, PAID, LifeStack, dumps, vn_today

VCB = "970436"  # a JSON bank
VN = ZoneInfo("Asia/Ho_Chi_Minh")
AGENCIES = ("BHXH", "DOLISA", "ESC")
SCHEME_AGENCY = {"PENSION": "BHXH", "MERITORIOUS": "DOLISA"}
CLAIM_SCHEME_AGENCY = {"SOCIAL_PROTECTION": "DOLISA"}
NAMES = (
    "Nguyễn Văn Ánh",
    "Trần Thị Hương",
    "Lê Đức Bình",
    "Phạm Thị Thảo",
    "Đỗ Văn Dũng",
    "Hoàng Thị Lan",
)
REP_NAMES = ("Nguyễn Thị Mai", "Trần Văn Hùng", "Lê Thị Hoa")
COMMUNE = {"commune_code": "09154", "list_date": "2023-05-07"}
CYCLES_PER_LIFE = 4
# What the bank answers the next money-moving calls: an ambiguous answer alone, or followed by a
# 409 when the same batch is sent again.
BANK_SCENARIOS = [(a,) for a in ANSWERS if a not in ("ok", "409_on_resend")] + [
    (a, "409_on_resend") for a in ("timeout", "504_after", "502_after", "garbled_2xx")
]


def period_after(period: str, months: int) -> str:
    year, month = map(int, period.split("-"))
    n = year * 12 + month - 1 + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


@dataclass(frozen=True)
class Destination:
    """Where a person's money goes: a bank account (and the representative's validity when it is
    theirs), or the post office."""

    counterparty: str
    account_number: str | None = None
    rep_valid_from: Any = None
    rep_valid_until: Any = None

    def covers(self, day: Any) -> bool:
        if self.rep_valid_from is None:
            return True
        return self.rep_valid_from <= day and (
            self.rep_valid_until is None or day <= self.rep_valid_until
        )


@dataclass
class Person:
    national_id: str
    name: str
    beneficiary_id: str
    agency: str  # the agency that pays this person
    scheme: str
    destination: Destination
    own_account: str
    entitlements: list[str] = field(default_factory=list)
    stopped_from: str | None = None  # the first stop of any of them
    # entitlement id -> the first period it does not pay: a stop ends the entitlements it names,
    # not a decision granted after it (a claim approved later pays again)
    stops: dict[str, str] = field(default_factory=dict)

    def paid_allowed(self, entitlement_id: str, period: str) -> bool:
        stop = self.stops.get(entitlement_id)
        return stop is None or period < stop

    def all_stopped(self, period: str) -> bool:
        return bool(self.entitlements) and all(
            not self.paid_allowed(e, period) for e in self.entitlements
        )


class BeneficiaryLife(RuleBasedStateMachine):
    people = Bundle("people")

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.life: LifeStack | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="life-")
        self.numbers = itertools.count(1)
        self.first_period = vn_today().strftime("%Y-%m")
        self.cycles = 0
        self.persons: list[Person] = []
        self.by_beneficiary: dict[str, Person] = {}
        self.refused_by_bank: set[str] = (
            set()
        )  # beneficiaries whose bank refused a transfer for good

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    @property
    def next_period(self) -> str:
        return period_after(self.first_period, self.cycles)

    @initialize(target=people, fallback=st.sampled_from(["none", "cash"]))
    def start_with_a_pensioner(self, fallback: str) -> Person:
        """The services start (paying a refused transfer in cash, or not) with one pensioner on
        BHXH's roll."""
        self.fallback = fallback
        self.life = self.run(LifeStack(Path(self._dir.name), fallback=fallback).start())
        return self.roll_upload("PENSION")

    def teardown(self) -> None:
        try:
            if self.life is not None:
                self.run(self.life.close())
        finally:
            self.runner.close()
            self._dir.cleanup()

    # -- helpers ------------------------------------------------------------------------------

    def fresh_account(self, holder: str) -> str:
        assert self.life is not None
        number = f"{next(self.numbers) + 1_000_000:010d}"
        self.run(
            self.life.open_accounts(
                [{"bin": VCB, "account_number": number, "holder_name": holder, "status": "ACTIVE"}]
            )
        )
        return number

    def fresh_identity(self) -> tuple[str, str]:
        n = next(self.numbers)
        return f"026055{n:06d}", NAMES[n % len(NAMES)]

    def lookup(self, national_id: str) -> dict[str, Any]:
        assert self.life is not None
        response = self.run(
            self.life.intake_call(
                "admin", "POST", "/v1/beneficiaries/lookup", json={"national_id": national_id}
            )
        )
        assert response.status_code == 200, response.text
        return response.json()

    def add(self, person: Person) -> Person:
        self.persons.append(person)
        self.by_beneficiary[person.beneficiary_id] = person
        return person

    # -- intake: the roll, claims, decisions ---------------------------------------------------

    @rule(target=people, scheme=st.sampled_from(sorted(SCHEME_AGENCY)))
    def roll_upload(self, scheme: str) -> Person:
        """An agency loads a monthly beneficiary from its existing roll, with their own account."""
        assert self.life is not None
        national_id, name = self.fresh_identity()
        account = self.fresh_account(name)
        agency = SCHEME_AGENCY[scheme]
        row = {
            "national_id": national_id,
            "full_name": name,
            "date_of_birth": "1955-03-01",
            "si_number": national_id[-10:] if scheme == "PENSION" else None,
            "commune_code": COMMUNE["commune_code"],
            "commune_list_date": COMMUNE["list_date"],
            "scheme": scheme,
            "decision_number": f"QD-ROLL-{national_id}",
            "amount_per_installment": "3500000",
            "start_period": self.first_period,
            "payment_method": "OWN_ACCOUNT",
            "bank_bin": VCB,
            "account_number": account,
        }
        response = self.run(
            self.life.intake_call(
                agency.lower(),
                "POST",
                "/v1/roll/uploads",
                json={"rows": [{k: v for k, v in row.items() if v is not None}]},
            )
        )
        assert response.status_code == 201, response.text
        [outcome] = response.json()["rows"]
        return self.add(
            Person(
                national_id,
                name,
                outcome["beneficiary_id"],
                agency,
                scheme,
                Destination(VCB, account),
                account,
                [outcome["entitlement_id"]],
            )
        )

    def file_and_decide(
        self, national_id: str, name: str, scheme: str, agency: str, account: str, dossier: str
    ) -> tuple[int, dict[str, Any]]:
        assert self.life is not None
        claim = {
            "portal_dossier_id": dossier,
            "scheme": scheme,
            "applicant": {
                "national_id": national_id,
                "full_name": name,
                "date_of_birth": "1955-03-01",
                **({"si_number": national_id[-10:]} if scheme == "PENSION" else {}),
            },
            "address": COMMUNE,
            "payment": {"method": "OWN_ACCOUNT", "bank_bin": VCB, "account_number": account},
        }
        filed = self.run(self.life.intake_call("portal", "POST", "/v1/claims", json=claim))
        if filed.status_code >= 400:
            assert filed.status_code < 500, filed.text
            return filed.status_code, filed.json()
        decision = {
            "outcome": "APPROVED",
            "decision_number": f"QD-{dossier}",
            "agency": agency,
            "amount_per_installment": 2_000_000,
            "schedule": {"kind": "OPEN_MONTHLY", "start_period": self.next_period},
        }
        decided = self.run(
            self.life.intake_call(
                agency.lower(),
                "POST",
                f"/v1/claims/{filed.json()['claim_id']}/decision",
                json=decision,
            )
        )
        assert decided.status_code < 500, decided.text
        return decided.status_code, decided.json()

    @rule(target=people, scheme=st.sampled_from(sorted(CLAIM_SCHEME_AGENCY)))
    def portal_claim(self, scheme: str) -> Person:
        """A new person files on the portal; the agency approves a monthly allowance."""
        national_id, name = self.fresh_identity()
        account = self.fresh_account(name)
        agency = CLAIM_SCHEME_AGENCY[scheme]
        status, body = self.file_and_decide(
            national_id, name, scheme, agency, account, f"DVC-{national_id}"
        )
        assert status in (200, 201), dumps(body)
        found = self.lookup(national_id)
        return self.add(
            Person(
                national_id,
                name,
                found["beneficiary_id"],
                agency,
                scheme,
                Destination(VCB, account),
                account,
                [body["entitlement_id"]],
            )
        )

    @precondition(
        lambda self: any(p.destination.account_number == p.own_account for p in self.persons)
    )
    @rule(data=st.data())
    def claim_a_scheme_already_held(self, data: st.DataObject) -> None:
        """The person files again for the scheme they are already paid (same account), and the
        paying agency approves: a second entitlement must not mean a second payment."""
        candidates = [p for p in self.persons if p.destination.account_number == p.own_account]
        person = data.draw(st.sampled_from(candidates))
        status, body = self.file_and_decide(
            person.national_id,
            person.name,
            person.scheme,
            person.agency,
            person.own_account,
            f"DVC-AGAIN-{person.national_id}-{next(self.numbers)}",
        )
        if status in (200, 201) and body.get("entitlement_id"):
            person.entitlements.append(body["entitlement_id"])

    # -- where the money goes -----------------------------------------------------------------

    @rule(
        person=people,
        client=st.sampled_from(AGENCIES),
        via=st.sampled_from(["api", "upload"]),
        kind=st.sampled_from(["own", "representative", "representative_not_yet", "cash"]),
    )
    def change_payment_method(self, person: Person, client: str, via: str, kind: str) -> None:
        assert self.life is not None
        today = vn_today()
        new: Destination
        body: dict[str, Any]
        if kind == "cash":
            body = {
                "method": "CASH_POST_OFFICE",
                "cash_reason": "cannot transact; nobody to authorise",
            }
            new = Destination("VNPOST")
        elif kind == "own":
            account = self.fresh_account(person.name)
            body = {"method": "OWN_ACCOUNT", "bank_bin": VCB, "account_number": account}
            new = Destination(VCB, account)
        else:
            n = next(self.numbers)
            rep_name = REP_NAMES[n % len(REP_NAMES)]
            account = self.fresh_account(rep_name)
            valid_from = (
                today - timedelta(days=30)
                if kind == "representative"
                else today + timedelta(days=1)
            )
            valid_until = today + timedelta(days=365)
            body = {
                "method": "AUTHORISED_ACCOUNT",
                "bank_bin": VCB,
                "account_number": account,
                "representative": {
                    "national_id": f"026180{n:06d}",
                    "full_name": rep_name,
                    "relationship": "con",
                    "power_of_attorney_ref": f"UQ-{n}",
                    "valid_from": valid_from.isoformat(),
                    "valid_until": valid_until.isoformat(),
                },
            }
            new = Destination(VCB, account, valid_from, valid_until)
        if via == "api":
            response = self.run(
                self.life.intake_call(
                    client.lower(),
                    "PUT",
                    f"/v1/beneficiaries/{person.beneficiary_id}/payment-method",
                    json=body,
                )
            )
            assert response.status_code < 500, response.text
            taken = response.status_code == 200
        else:
            row = {
                "national_id": person.national_id,
                "payment_method": body["method"],
                **{
                    k: v
                    for k, v in body.items()
                    if k in ("bank_bin", "account_number", "cash_reason")
                },
            }
            rep = body.get("representative")
            if rep:
                row.update(
                    rep_national_id=rep["national_id"],
                    rep_full_name=rep["full_name"],
                    rep_relationship=rep["relationship"],
                    rep_power_of_attorney_ref=rep["power_of_attorney_ref"],
                    rep_valid_from=rep["valid_from"],
                    rep_valid_until=rep["valid_until"],
                )
            response = self.run(
                self.life.intake_call(
                    client.lower(), "POST", "/v1/payment-methods/uploads", json={"rows": [row]}
                )
            )
            assert response.status_code < 500, response.text
            taken = response.status_code == 201 and response.json()["accepted"] == 1
        if client != person.agency:
            assert not taken, (
                f"{client} changed where a beneficiary paid by {person.agency} is paid "
                f"({via}): {response.status_code} {response.text[:300]}"
            )
            return
        if person.stopped_from is not None and not taken:
            return  # a stopped entitlement may leave the agency nothing to pay: a refusal is fine
        assert taken, response.text
        person.destination = new

    @rule(person=people)
    def bank_closes_the_account(self, person: Person) -> None:
        """The person's bank account is closed: the next transfer is refused for good (AC04)."""
        assert self.life is not None
        if person.destination.account_number is None:
            return
        state = self.life.sandbox_app.state.sandbox.state
        holder = state.account(VCB, person.destination.account_number)
        assert holder is not None
        # An account seeded again is replaced: the same holder, closed.
        state.seed_accounts(
            [(VCB, person.destination.account_number, holder.holder_name, "CLOSED")]
        )
        self.refused_by_bank.add(person.beneficiary_id)

    @rule(person=people, client=st.sampled_from(AGENCIES))
    def stop(self, person: Person, client: str) -> None:
        """An agency stops the person's entitlements from the next period on."""
        assert self.life is not None
        effective = self.next_period
        for entitlement_id in person.entitlements:
            response = self.run(
                self.life.intake_call(
                    client.lower(),
                    "POST",
                    f"/v1/entitlements/{entitlement_id}/stop",
                    json={"reason": "DEATH", "effective_period": effective},
                )
            )
            assert response.status_code < 500, response.text
            if client != person.agency:
                assert response.status_code >= 400, (
                    f"{client} stopped an entitlement {person.agency} pays"
                )
            elif response.status_code == 200:
                person.stops.setdefault(entitlement_id, effective)
                if person.stopped_from is None:
                    person.stopped_from = effective

    # -- the bank's answers and the cycles ----------------------------------------------------

    @rule(answers=st.sampled_from(BANK_SCENARIOS))
    def bank_answers(self, answers: tuple[str, ...]) -> None:
        """The next money-moving calls get these answers (the bank has the batch each time)."""
        assert self.life is not None
        self.run(self.life.plan_bank_answers(*answers))

    @precondition(lambda self: self.cycles < CYCLES_PER_LIFE)
    @rule()
    def monthly_cycle(self) -> None:
        self.cycle()

    @precondition(lambda self: self.cycles < CYCLES_PER_LIFE)
    @rule()
    def another_monthly_cycle(self) -> None:
        """(The same as monthly_cycle: a life has cycles more often than anything else.)"""
        self.cycle()

    def cycle(self) -> None:
        assert self.life is not None
        period = self.next_period
        self.run(self.life.settled_between_services())
        snapshot = {p.beneficiary_id: p.destination for p in self.persons}
        items = self.run(self.life.run_cycle(period))
        self.cycles += 1
        self.check_cycle(period, items, snapshot)

    def check_cycle(
        self, period: str, items: list[dict[str, Any]], destinations: dict[str, Destination]
    ) -> None:
        assert self.life is not None
        ours = [i for i in items if i["beneficiary_id"] in self.by_beneficiary]
        # Every installment ends in a final state or is visibly pending (on hold, with why).
        stuck = [
            (i["id"], i["state"])
            for i in ours
            if i["state"] not in FINAL and i["state"] != "ON_HOLD"
        ]
        assert not stuck, f"installments of {period} left in flight: {stuck}"
        unexplained = [
            i["id"] for i in ours if i["state"] == "ON_HOLD" and not i.get("hold_reason")
        ]
        assert not unexplained, f"installments on hold without a reason: {unexplained}"
        # None lost: each person not stopped has an installment for the period.
        for person in self.persons:
            has = [i for i in ours if i["beneficiary_id"] == person.beneficiary_id]
            wrongly = [
                i
                for i in has
                if i["state"] in PAID and not person.paid_allowed(i["entitlement_id"], period)
            ]
            assert not wrongly, f"paid after the stop from {person.stopped_from}"
            if not person.all_stopped(period):
                assert has, f"no installment of {period} for a {person.scheme} beneficiary"
        self.check_bank_ledger(period, destinations)
        self.check_approvals()

    def check_approvals(self) -> None:
        """No money leaves without an approval of exactly what left: everything the bank or the
        post office received is an attempt in a batch an approval released, received after that
        approval; and each approval released exactly the count and sum it names (what its batches
        carry, with what was taken out of them unsent after it)."""
        assert self.life is not None
        approvals, released, approval_of = self.run(self.life.approvals_and_releases())
        by_id = {a["id"]: a for a in approvals}
        for transfer in self.life.bank_transfers():
            approval_id = approval_of.get(transfer.end_to_end_id)
            assert approval_id is not None, (
                f"{transfer.end_to_end_id} reached {transfer.counterparty} from no approved batch"
            )
            approval = by_id[approval_id]
            assert approval["decision"] == "APPROVE"
            decided = approval["decided_at"]
            if decided.tzinfo is None:
                decided = decided.replace(tzinfo=transfer.received_at.tzinfo)
            assert decided <= transfer.received_at, (
                f"{transfer.end_to_end_id} was received before its approval"
            )
        for approval in approvals:
            if approval["decision"] != "APPROVE":
                assert approval["id"] not in released, "a rejection released batches"
                continue
            assert released.get(approval["id"], (0, 0)) == (
                approval["count"],
                approval["amount"],
            ), (
                f"approval {approval['id']} of {approval['period']} {approval['agency']} named "
                f"{approval['count']} for {approval['amount']} VND but released "
                f"{released.get(approval['id'])}"
            )

    def check_bank_ledger(self, period: str, destinations: dict[str, Destination]) -> None:
        """The sandbox's own ledger against what the agencies decided."""
        assert self.life is not None
        by_e2e: dict[str, dict[str, Any]] = {}
        for p in {period_after(self.first_period, n) for n in range(self.cycles)}:
            for item in self.run(self.life.installments(p)):
                for attempt in range(1, int(item["attempt_no"] or 0) + 1):
                    by_e2e[f"PAY-{item['id']}-{attempt}"] = item
        kept: Counter[tuple[str, str, str]] = Counter()
        for transfer in self.life.bank_transfers():
            item = by_e2e.get(transfer.end_to_end_id)
            assert item is not None, f"the bank holds {transfer.end_to_end_id}, unknown to payout"
            if not (transfer.credited and transfer.status in ("SETTLED", "PAID")):
                continue
            # Money the bank paid is money payout counts as paid, on that very attempt.
            current = f"PAY-{item['id']}-{item['attempt_no']}"
            assert item["state"] in PAID and current == transfer.end_to_end_id, (
                f"the bank paid {transfer.end_to_end_id} ({transfer.counterparty}) but payout holds "
                f"{item['state']} on {current}: {item.get('reason_code')} {item.get('reason_text')}"
            )
            key = (item["beneficiary_id"], item["scheme"], item["period"])
            kept[key] += 1
            person = self.by_beneficiary[item["beneficiary_id"]]
            if item["period"] != period:
                continue
            sent_on = transfer.received_at.astimezone(VN).date()
            where = destinations[person.beneficiary_id]
            if transfer.counterparty == "VNPOST":
                allowed = where.counterparty == "VNPOST" or (
                    self.fallback == "cash" and person.beneficiary_id in self.refused_by_bank
                )
                assert allowed, f"paid in cash while {person.agency} set a bank account ({period})"
            else:
                assert (transfer.counterparty, transfer.account_number) == (
                    where.counterparty,
                    where.account_number,
                ), f"money of {period} went to an account {person.agency} did not set"
                assert where.covers(sent_on), (
                    f"paid to a representative on {sent_on}, outside their authorisation {where}"
                )
            assert person.paid_allowed(item["entitlement_id"], item["period"]), (
                f"paid for {item['period']}, stopped from {person.stops[item['entitlement_id']]}"
            )
        twice = {key: n for key, n in kept.items() if n > 1}
        assert not twice, f"paid more than once for a person, scheme and period: {twice}"


MACHINE_SETTINGS = settings(
    # Each example starts its own services: no shrinking (a failing life is printed step by step
    # as it ran), derandomized so that every run tries the same lives.
    max_examples=6,
    stateful_step_count=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class TestBeneficiaryLife:
    async def test_any_life_pays_once_per_person_scheme_and_period_and_only_where_the_paying_agency_said(
        self,
    ) -> None:
        # The machine runs its services on loops of its own, in a thread of its own.
        await asyncio.to_thread(
            run_state_machine_as_test, BeneficiaryLife, settings=MACHINE_SETTINGS
        )


async def live(fallback: str, *steps: str, answers: tuple[str, ...] = ()) -> None:
    await asyncio.to_thread(live_in_thread, fallback, *steps, answers=answers)


def live_in_thread(fallback: str, *steps: str, answers: tuple[str, ...] = ()) -> None:
    """One life, step by step, as the machine would run it."""
    state = BeneficiaryLife()
    try:
        person = state.start_with_a_pensioner(fallback)
        for step in steps:
            if step == "bank_answers":
                state.bank_answers(answers)
            elif step == "claim_again":
                status, body = state.file_and_decide(
                    person.national_id,
                    person.name,
                    person.scheme,
                    person.agency,
                    person.own_account,
                    f"DVC-AGAIN-{person.national_id}",
                )
                if status in (200, 201) and body.get("entitlement_id"):
                    person.entitlements.append(body["entitlement_id"])
            elif step.startswith("method:"):
                _, client, via, kind = step.split(":")
                state.change_payment_method(person, client, via, kind)
            elif step == "close_account":
                state.bank_closes_the_account(person)
            elif step.startswith("stop:"):
                state.stop(person, step.split(":")[1])
            else:
                getattr(state, step)()
    finally:
        state.teardown()


class TestLives:
    """Lives a derandomized run may not draw, walked on every run."""

    async def test_another_agency_cannot_redirect_a_pensioners_money(self) -> None:
        await live(
            "none", "method:DOLISA:api:own", "method:ESC:upload:representative", "monthly_cycle"
        )

    async def test_a_second_pension_approved_for_a_pensioner_on_the_roll_pays_once_a_period(
        self,
    ) -> None:
        await live("none", "claim_again", "monthly_cycle", "monthly_cycle")

    async def test_a_representative_whose_authorisation_has_not_begun_is_not_paid(self) -> None:
        await live("none", "method:BHXH:api:representative_not_yet", "monthly_cycle")

    async def test_a_batch_the_bank_took_despite_a_gateway_error_is_paid_once_even_with_cash_fallback(
        self,
    ) -> None:
        await live("cash", "bank_answers", "monthly_cycle", answers=("504_after", "409_on_resend"))

    async def test_an_unreadable_answer_then_a_refused_resend_is_paid_once(self) -> None:
        await live(
            "cash", "bank_answers", "monthly_cycle", answers=("garbled_2xx", "409_on_resend")
        )

    async def test_a_closed_account_is_paid_in_cash_once_with_the_fallback(self) -> None:
        await live("cash", "close_account", "monthly_cycle", "monthly_cycle")

    async def test_only_the_paying_agency_stops_and_nothing_is_paid_after_its_stop(self) -> None:
        await live(
            "none", "monthly_cycle", "stop:DOLISA", "stop:BHXH", "monthly_cycle", "monthly_cycle"
        )
