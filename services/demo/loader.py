"""Drive a running system through a province's year, only through the services' own APIs:
seed the banks, load the rolls, collect accounts month by month, file and decide unemployment
claims, and run each month's payment cycle until it has settled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from services.demo.province import Collected, Province, RollEntry, UnemploymentClaim
from shared.admin_units import LIST_2023
from shared.events.contracts import ACCOUNT_VERIFICATION_TOPIC, BENEFICIARY_TOPIC, PAYMENT_TOPIC
from shared.messaging.ports import EventBus
from shared.periods import next_period

REGION_MINIMUM_WAGE = {"I": 4_680_000, "II": 4_160_000, "III": 3_640_000, "IV": 3_250_000}
IN_FLIGHT = ("SCHEDULED", "SUBMITTED")
OPERATOR = "administrator"  # payout's operator: payout:operate, payout:read, reports:*
PREPARER = "bhxh-maker"  # prepares each period's cycle; each agency's checker approves its part
# 2023's payment calendar: January and February paid together before Tết (22 January 2023),
# then each month on the 10th, prepared five days before.
CALENDAR_2023 = (
    {"pay_date": "2023-01-16", "periods": ["2023-01", "2023-02"], "prepare_on": "2023-01-11"},
    *(
        {
            "pay_date": f"2023-{m:02d}-10",
            "periods": [f"2023-{m:02d}"],
            "prepare_on": f"2023-{m:02d}-05",
        }
        for m in range(3, 13)
    ),
)
POST_OFFICE_USER = "post-office"  # records the cash of the period left for the console


def planned(period: str) -> dict[str, Any]:
    """The calendar entry of a period: 2023's as planned, a later one on the 10th."""
    for entry in CALENDAR_2023:
        if period in entry["periods"]:
            return entry
    return {"pay_date": f"{period}-10", "periods": [period], "prepare_on": f"{period}-05"}


DECEASED_EVERY = 2_000  # one holder in this many is recorded as deceased in the population registry
CASH_UNTIL_COLLECTED = "paid in cash at the commune post office until an account is collected"
CLAIMS_IN_FLIGHT = 16  # claims the portal forwards at once

Progress = Callable[[str, int, int], None]
T = TypeVar("T")


@dataclass
class Endpoints:
    intake: str
    payout: str
    reporting: str
    sandbox: str


@dataclass
class MonthResult:
    period: str
    installments: int
    by_state: dict[str, int]
    seconds: float
    approvals: list[dict[str, Any]] = field(default_factory=list)  # the period's trail
    held: dict[str, int] = field(default_factory=dict)  # on hold, by reason


@dataclass
class LoadReport:
    roll_taken: int = 0
    roll_refused: int = 0
    methods_taken: int = 0
    methods_refused: int = 0
    claims_filed: int = 0
    decisions: int = 0
    months: list[MonthResult] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent per phase, summed

    async def timed(self, phase: str, work: Awaitable[T]) -> T:
        began = time.monotonic()
        try:
            return await work
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - began


def recorded_deceased(province: Province) -> frozenset[str]:
    """The CCCDs the population registry records as deceased: one roll holder in
    DECEASED_EVERY, so that revalidation holds their installments and proposes their stops."""
    return frozenset(
        entry.person.national_id for entry in province.roll[DECEASED_EVERY // 2 :: DECEASED_EVERY]
    )


def unemployment_terms(claim: UnemploymentClaim) -> tuple[int, int]:
    """60% of the average salary capped at 5x the regional minimum; 3 months for 12-36 months of
    contributions, one more per further 12, at most 12."""
    amount = min(claim.average_salary * 60 // 100, 5 * REGION_MINIMUM_WAGE[claim.region])
    months = min(12, 3 + max(0, claim.contribution_months - 36) // 12)
    return amount, months


def _method_columns(collected: Collected) -> dict[str, Any]:
    row: dict[str, Any] = {"payment_method": collected.method}
    if collected.account:
        row.update(
            bank_bin=collected.account.bank_bin, account_number=collected.account.account_number
        )
    if collected.cash_reason:
        row["cash_reason"] = collected.cash_reason
    if collected.representative:
        rep = collected.representative
        row.update(
            rep_national_id=rep.person.national_id,
            rep_full_name=rep.person.full_name,
            rep_relationship=rep.relationship,
            rep_power_of_attorney_ref=rep.power_of_attorney_ref,
            rep_valid_from=rep.valid_from.isoformat(),
            rep_valid_until=rep.valid_until.isoformat(),
        )
    return row


def _collected_rows(province: Province, period: str) -> list[tuple[str, dict[str, Any]]]:
    """(agency, spreadsheet row) of each account the localities collected during `period`."""
    return [
        (entry.agency, {"national_id": entry.person.national_id, **_method_columns(collected)})
        for entry in province.roll
        if (collected := entry.methods[0]).month == period
        and collected.method != "CASH_POST_OFFICE"
    ]


def _roll_row(entry: RollEntry, first_period: str) -> dict[str, Any]:
    person = entry.person
    initial = entry.methods[0]
    if initial.month >= first_period:  # not collected yet when the year starts
        initial = Collected(initial.month, "CASH_POST_OFFICE", cash_reason=CASH_UNTIL_COLLECTED)
    return {
        "national_id": person.national_id,
        "full_name": person.full_name,
        "date_of_birth": person.date_of_birth.isoformat(),
        "si_number": person.si_number,
        "commune_code": person.commune.code,
        "commune_list_date": LIST_2023.isoformat(),
        "scheme": entry.scheme,
        "decision_number": entry.decision_number,
        "amount_per_installment": entry.monthly_amount,
        "start_period": entry.start_period,
        **_method_columns(initial),
    }


class DemoDriver:
    def __init__(
        self,
        endpoints: Endpoints,
        bus: EventBus,
        outbox_pending: Callable[[], Awaitable[int]],
        progress: Progress | None = None,
    ) -> None:
        self.urls = endpoints
        self.http = httpx.AsyncClient(timeout=120)
        self.bus = bus
        self.outbox_pending = outbox_pending
        self.progress = progress or (lambda *_: None)
        self.totals: dict[str, int] = {}  # what each phase will have done when the year is run
        self.done: dict[str, int] = {}
        self._tokens: dict[str, dict[str, str]] = {}

    def plan(self, province: Province, periods: list[str]) -> None:
        """The size of each phase over the periods to run: one bar per phase for the year."""
        self.totals = {
            "bank accounts": len(province.accounts()),
            "roll": len(province.roll),
            "accounts": sum(len(_collected_rows(province, p)) for p in periods),
            "claims": sum(1 for c in province.unemployment if c.filed_month in periods),
        }

    def advance(self, phase: str, count: int) -> None:
        self.done[phase] = self.done.get(phase, 0) + count
        self.progress(phase, self.done[phase], max(self.totals.get(phase, 0), self.done[phase]))

    async def close(self) -> None:
        await self.http.aclose()

    async def _client(self, client_id: str) -> dict[str, str]:
        """The agencies and the portal sign in as the development clients intake seeds."""
        if client_id not in self._tokens:
            response = await self.http.post(
                f"{self.urls.intake}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, f"{client_id}-dev-secret"),
            )
            response.raise_for_status()
            self._tokens[client_id] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self._tokens[client_id]

    async def _person(self, username: str) -> dict[str, str]:
        """Payout's operator signs in at intake as a development user (DEMO_USERS)."""
        from services.intake.service_layer.users import DEMO_USERS

        key = f"person:{username}"
        if key not in self._tokens:
            response = await self.http.post(
                f"{self.urls.intake}/oauth/token",
                data={
                    "grant_type": "password",
                    "username": username,
                    "password": DEMO_USERS[username].password,
                },
            )
            response.raise_for_status()
            self._tokens[key] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self._tokens[key]

    async def seed_banks(self, province: Province) -> int:
        accounts = [
            {
                "bin": a.bank_bin,
                "account_number": a.account_number,
                "holder_name": a.holder_name,
                "status": a.status,
            }
            for a in province.accounts()
        ]
        for start in range(0, len(accounts), 5_000):
            chunk = accounts[start : start + 5_000]
            (
                await self.http.post(f"{self.urls.sandbox}/admin/accounts", json=chunk)
            ).raise_for_status()
            self.advance("bank accounts", len(chunk))
        return len(accounts)

    async def seed_population(
        self, province: Province, deceased: Collection[str] = frozenset()
    ) -> int:
        """The population registry (played by the sandbox) knows everyone the province
        registers, under the name and date of birth intake holds, alive unless their CCCD is in
        `deceased`: identity revalidation confirms them before each period is paid (a person
        the registry does not know is held as NOT_FOUND)."""
        persons: dict[str, dict[str, Any]] = {}
        for person in [e.person for e in province.roll] + [c.person for c in province.unemployment]:
            dead = person.national_id in deceased
            persons[person.national_id] = {
                "national_id": person.national_id,
                "full_name": person.full_name,
                "date_of_birth": person.date_of_birth.isoformat(),
                "status": "DECEASED" if dead else "ALIVE",
            }
        rows = list(persons.values())
        for start in range(0, len(rows), 10_000):
            chunk = rows[start : start + 10_000]
            (
                await self.http.post(f"{self.urls.sandbox}/admin/population", json=chunk)
            ).raise_for_status()
        return len(rows)

    async def _upload(
        self, path: str, agency: str, rows: list[dict[str, Any]], refusals: list[str]
    ) -> tuple[int, int]:
        taken = refused = 0
        headers = await self._client(agency.lower())
        for start in range(0, len(rows), 2_000):
            chunk = rows[start : start + 2_000]
            response = await self.http.post(
                f"{self.urls.intake}{path}", json={"rows": chunk}, headers=headers
            )
            response.raise_for_status()
            report = response.json()
            refused += int(report["rejected"])
            taken += int(report["accepted"]) + int(report["unchanged"])
            refusals.extend(
                f"{path} row {r['row']}: "
                + "; ".join(f"{e['pointer']} {e['detail']}" for e in r["errors"])
                for r in report["rejections"]
            )
            self.advance("roll" if "roll" in path else "accounts", len(chunk))
        return taken, refused

    async def load_roll(self, province: Province, first_period: str, report: LoadReport) -> None:
        by_agency: dict[str, list[dict[str, Any]]] = {}
        for entry in province.roll:
            by_agency.setdefault(entry.agency, []).append(_roll_row(entry, first_period))
        for agency, rows in by_agency.items():
            taken, refused = await self._upload("/v1/roll/uploads", agency, rows, report.refusals)
            report.roll_taken += taken
            report.roll_refused += refused

    async def collect_accounts(self, province: Province, period: str, report: LoadReport) -> None:
        """The accounts localities collected during `period`, sent as spreadsheet rows."""
        by_agency: dict[str, list[dict[str, Any]]] = {}
        for agency, row in _collected_rows(province, period):
            by_agency.setdefault(agency, []).append(row)
        for agency, rows in by_agency.items():
            taken, refused = await self._upload(
                "/v1/payment-methods/uploads", agency, rows, report.refusals
            )
            report.methods_taken += taken
            report.methods_refused += refused

    async def file_unemployment(self, province: Province, period: str, report: LoadReport) -> None:
        """The portal forwards the month's claims as people file them, many at once, and BHXH
        decides each one."""
        claims = [c for c in province.unemployment if c.filed_month == period]
        await self._client("portal"), await self._client("bhxh")  # signed in once, not per claim
        in_flight = asyncio.Semaphore(CLAIMS_IN_FLIGHT)

        async def file_and_decide(claim: UnemploymentClaim) -> None:
            async with in_flight:
                await self._file_and_decide(claim, period, report)
            self.advance("claims", 1)

        await asyncio.gather(*(file_and_decide(claim) for claim in claims))

    async def _file_and_decide(
        self, claim: UnemploymentClaim, period: str, report: LoadReport
    ) -> None:
        portal = await self._client("portal")
        bhxh = await self._client("bhxh")
        year, month = map(int, period.split("-"))
        first_paid = f"{year + month // 12}-{month % 12 + 1:02d}"
        person = claim.person
        body = {
            "portal_dossier_id": claim.dossier_id,
            "scheme": "UNEMPLOYMENT",
            "applicant": {
                "national_id": person.national_id,
                "full_name": person.full_name,
                "date_of_birth": person.date_of_birth.isoformat(),
                "si_number": person.si_number,
            },
            "address": {"commune_code": person.commune.code, "list_date": LIST_2023.isoformat()},
            "payment": {
                "method": "OWN_ACCOUNT",
                "bank_bin": claim.account.bank_bin,
                "account_number": claim.account.account_number,
            },
        }
        filed = await self.http.post(f"{self.urls.intake}/v1/claims", json=body, headers=portal)
        filed.raise_for_status()
        report.claims_filed += 1
        claim_id = filed.json()["claim_id"]
        if claim.approved:
            amount, months = unemployment_terms(claim)
            decision = {
                "outcome": "APPROVED",
                "decision_number": f"QD-TN-{claim.dossier_id}",
                "agency": "BHXH",
                "amount_per_installment": amount,
                "schedule": {
                    "kind": "FIXED_MONTHLY",
                    "start_period": first_paid,
                    "installments": months,
                },
                "average_salary": claim.average_salary,
                "contribution_months": claim.contribution_months,
                "region": claim.region,
            }
        else:
            decision = {
                "outcome": "REJECTED",
                "agency": "BHXH",
                "reason_code": "FOUND_WORK",
                "reason_text": "found a job within 15 days of filing",
            }
        decided = await self.http.post(
            f"{self.urls.intake}/v1/claims/{claim_id}/decision", json=decision, headers=bhxh
        )
        decided.raise_for_status()
        report.decisions += 1

    async def settle_events(self, timeout: float = 600) -> None:
        """Wait until intake's changes have reached payout and payout has verified the accounts."""
        deadline = time.monotonic() + timeout
        calm = 0
        while time.monotonic() < deadline:
            status = (
                await self.http.get(
                    f"{self.urls.payout}/v1/status", headers=await self._person(OPERATOR)
                )
            ).json()
            busy = (
                await self.outbox_pending()
                + await self.bus.group_lag("payout.intake-view", [BENEFICIARY_TOPIC])
                + await self.bus.group_lag(
                    "intake.account-verification", [ACCOUNT_VERIFICATION_TOPIC]
                )
                + status["verifications"].get("PENDING", 0)
                + status["verifications"].get("IN_PROGRESS", 0)
            )
            calm = calm + 1 if busy == 0 else 0
            if calm >= 2:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("the services did not settle in time")

    async def load_envelopes_and_calendar(self, periods: list[str]) -> int:
        """The administrator loads each agency's funds envelopes for the periods and their
        payment calendar (`planned`): data, as a province would load its own."""
        from services.payout.adapters.envelope_data import envelope_rows

        admin = await self._person(OPERATOR)
        rows = envelope_rows(periods)
        (
            await self.http.put(
                f"{self.urls.payout}/v1/envelopes", json={"envelopes": rows}, headers=admin
            )
        ).raise_for_status()
        entries = list({tuple(e["periods"]): e for e in map(planned, periods)}.values())
        (
            await self.http.put(
                f"{self.urls.payout}/v1/calendar", json={"entries": entries}, headers=admin
            )
        ).raise_for_status()
        return len(rows)

    @staticmethod
    def paid_together(periods: list[str]) -> list[list[str]]:
        """The periods in the groups the calendar pays on one date, in order."""
        groups: list[list[str]] = []
        for entry in CALENDAR_2023:
            group = [p for p in entry["periods"] if p in periods]
            if group:
                groups.append(group)
        return groups

    async def run_cycles(self, periods: list[str], timeout: float = 900) -> list[MonthResult]:
        """Prepare the periods paid on one date (as a maker), approve each agency's part as
        that agency's checker (a second officer) with the digest shown, supplementary parts
        too, and wait until every installment is final or held."""
        started = time.monotonic()
        maker = await self._person(PREPARER)
        for period in periods:
            (
                await self.http.post(
                    f"{self.urls.payout}/v1/cycles", json={"period": period}, headers=maker
                )
            ).raise_for_status()
        results: list[MonthResult] = []
        for period in periods:
            results.append(await self._approve_and_settle(period, started, timeout))
        return results

    async def _approve_and_settle(self, period: str, started: float, timeout: float) -> MonthResult:
        reader = await self._person(OPERATOR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = (
                await self.http.get(f"{self.urls.payout}/v1/cycles/{period}", headers=reader)
            ).json()
            if view.get("approval_state") == "PREPARED":
                for agency, part in view["agencies"].items():
                    awaiting = part.get("awaiting_approval")
                    if awaiting and part["state"] == "AWAITING_APPROVAL":
                        await self._approve(period, agency, awaiting["digest"])
            by_state = {
                state: int(v["count"]) if isinstance(v, dict) else int(v)
                for state, v in view.get("by_state", {}).items()
            }
            total = sum(by_state.values())
            # On hold (no usable method yet, or an identity to check) is visibly pending, not in
            # flight; what awaits approval is in flight until it is approved.
            done = total - sum(by_state.get(state, 0) for state in IN_FLIGHT)
            self.progress(f"cycle {period}", done, total)
            if total and done == total and view.get("approval_state") != "PREPARED":
                trail = (
                    await self.http.get(
                        f"{self.urls.payout}/v1/cycles/{period}/approvals", headers=reader
                    )
                ).json()["items"]
                held: dict[str, int] = {}
                for part in view["agencies"].values():
                    for reason, figures in part.get("held", {}).items():
                        held[reason] = held.get(reason, 0) + int(figures["count"])
                return MonthResult(period, total, by_state, time.monotonic() - started, trail, held)
            await asyncio.sleep(0.3)
        raise TimeoutError(f"the cycle of {period} did not settle in time")

    async def leave_for_the_console(self, last: str, timeout: float = 900) -> dict[str, Any]:
        """The period after `last`, prepared by the maker and left for people at the console:
        its envelopes and date loaded, each agency's part awaiting its checker, and its cash in
        the development post-office user's communes waiting for them to record the handover
        (the sandbox's post office is told to leave those items pending). Nothing of it is
        approved here."""
        from services.intake.service_layer.users import DEMO_USERS

        period = next_period(last)
        await self.load_envelopes_and_calendar([period])
        admin = await self._person(OPERATOR)
        maker = await self._person(PREPARER)
        (
            await self.http.post(
                f"{self.urls.payout}/v1/cycles", json={"period": period}, headers=maker
            )
        ).raise_for_status()
        deadline = time.monotonic() + timeout
        while True:
            view = (
                await self.http.get(f"{self.urls.payout}/v1/cycles/{period}", headers=admin)
            ).json()
            if view.get("approval_state") == "PREPARED":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cycle of {period} was not prepared in time")
            await asyncio.sleep(0.3)
        communes = DEMO_USERS[POST_OFFICE_USER].communes
        waiting = await self._cash_items(period, frozenset(communes), admin)
        for start in range(0, len(waiting), 10_000):
            rows = [
                {"end_to_end_id": e2e, "outcome": "PENDING"}
                for e2e in waiting[start : start + 10_000]
            ]
            (
                await self.http.put(f"{self.urls.sandbox}/admin/vnpost/outcomes", json=rows)
            ).raise_for_status()
        return {"period": period, "communes": list(communes), "cash": len(waiting), **view}

    async def _cash_items(
        self, period: str, communes: frozenset[str], headers: dict[str, str]
    ) -> list[str]:
        """The end-to-end ids of the period's cash payments in these communes."""
        found: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {
                "period": period,
                "counterparty": "VNPOST",
                "limit": 1000,
            }
            if cursor:
                params["cursor"] = cursor
            page = (
                await self.http.get(
                    f"{self.urls.payout}/v1/installments", params=params, headers=headers
                )
            ).json()
            found += [
                item["end_to_end_id"]
                for item in page["items"]
                if item["end_to_end_id"] and item["commune_code"] in communes
            ]
            cursor = page["next_cursor"]
            if not cursor:
                return found

    async def _approve(self, period: str, agency: str, digest: str) -> None:
        checker = await self._person(f"{agency.lower()}-checker")
        answer = await self.http.post(
            f"{self.urls.payout}/v1/cycles/{period}/approvals",
            json={"agency": agency, "digest": digest, "decision": "APPROVE"},
            headers=checker,
        )
        # 409: what awaits changed since it was read (an account verified meanwhile): read again.
        if answer.status_code != 409:
            answer.raise_for_status()

    async def reporting_caught_up(
        self, group: str, payout_outbox_pending: Callable[[], Awaitable[int]], timeout: float = 300
    ) -> None:
        """Every payment event payout has written is published, and reporting has applied it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                await payout_outbox_pending() == 0
                and await self.bus.group_lag(group, [PAYMENT_TOPIC]) == 0
            ):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("reporting did not catch up in time")

    async def summary(self, period: str) -> dict[str, Any]:
        progress = (await self.http.get(f"{self.urls.reporting}/v1/targets/progress")).json()
        kpis = (
            await self.http.get(f"{self.urls.reporting}/v1/kpis", params={"period": period})
        ).json()
        return {"targets": progress, "kpis": kpis}
