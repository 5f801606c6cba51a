"""Intake, payout and the bank sandbox in one process on the embedded default (SQLite files and
the embedded event log in a fresh directory), talked to through their HTTP APIs, for property
tests of a beneficiary's whole life. The bank's answers to the next money-moving calls can be
chosen (`plan_bank_answers`): the sandbox takes the batch, then the caller sees a 504, a 502, a
2xx it cannot read or a reply later than it waits; or a 409 when it sends the same batch again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from services.intake import bootstrap as intake
from services.intake.settings import IntakeSettings
from services.payout import bootstrap as payout
from services.payout.settings import PayoutSettings
from services.sandbox import SandboxSettings
from services.sandbox import create_app as create_sandbox
from services.stack import ServiceSpec, Stack
from shared.events.contracts import ACCOUNT_VERIFICATION_TOPIC, BENEFICIARY_TOPIC
from tests.support import tokens

OPERATOR_SCOPES = {"payout:operate", "payout:read", "pii:read", "cycles:prepare", "envelopes:write"}
FINAL = frozenset({"SETTLED", "FAILED", "RETURNED", "PAID_CASH", "CANCELLED"})
PAID = frozenset({"SETTLED", "PAID_CASH"})
IN_FLIGHT = frozenset({"SCHEDULED", "SUBMITTED"})
READ_TIMEOUT = 0.5  # payout's, for the bank's answers
ANSWERS = ("ok", "timeout", "504_after", "502_after", "garbled_2xx", "409_on_resend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bank_faults(answers: tuple[str, ...], read_timeout: float) -> dict[str, Any]:
    """The sandbox's faults that give the next money-moving requests these answers, and no more
    (a fault budget of one per answer)."""
    faults: dict[str, Any] = {"fault_budget": len(answers)}
    for answer in answers:
        if answer == "timeout":
            faults.update(slow_answer_rate=1.0, slow_answer_seconds=read_timeout * 2)
        elif answer in ("504_after", "502_after"):
            faults.update(error_after_accept_rate=1.0, error_after_accept_status=int(answer[:3]))
        elif answer == "garbled_2xx":
            faults["unreadable_answer_rate"] = 1.0
        elif answer == "409_on_resend":
            faults["conflict_on_resend_rate"] = 1.0
    return faults


@dataclass
class LifeStack:
    """The services of one example, each on a free port, with a fresh embedded data directory."""

    data_dir: Path
    fallback: str = "none"
    stack: Stack | None = None
    sandbox_app: Any = None
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    _sandbox_server: uvicorn.Server | None = None
    _sandbox_task: asyncio.Task | None = None

    async def start(self) -> LifeStack:
        ports = {name: free_port() for name in ("intake", "payout", "sandbox")}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        common: dict[str, Any] = {
            "environment": "development",
            "data_dir": self.data_dir,
            "log_level": "WARNING",
            "topic_partitions": 1,
        }
        intake_settings = IntakeSettings(**common, **tokens.trust("intake"), port=ports["intake"])
        payout_settings = PayoutSettings(
            **common,
            **tokens.trust("payout"),
            port=ports["payout"],
            bank_base_url=self.urls["sandbox"],
            scheduler_enabled=False,
            bank_read_timeout_seconds=READ_TIMEOUT,
            status_inquiry_after_seconds=1.0,
            retry_base_seconds=0.05,
            retry_max_seconds=0.3,
            worker_idle_seconds=0.05,
            lease_seconds=10.0,
            verification_batch_size=50,
            permanent_failure_fallback=self.fallback,
        )
        sandbox_settings = SandboxSettings(
            port=ports["sandbox"],
            callback_base=self.urls["payout"],
            webhook_delay_ms=0,
            webhook_retry_base_ms=20,
            # The bank decides a little later than it answers: a
            # resend after an ambiguous answer comes before the news.
            settlement_delay_ms=600,
        )
        self.sandbox_app = create_sandbox(sandbox_settings)
        self._sandbox_server = uvicorn.Server(
            uvicorn.Config(
                self.sandbox_app,
                host="127.0.0.1",
                port=ports["sandbox"],
                log_config=None,
                access_log=False,
                lifespan="on",
            )
        )
        self._sandbox_server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._sandbox_task = asyncio.ensure_future(self._sandbox_server.serve())
        self.stack = Stack(
            specs=[
                ServiceSpec("intake", intake_settings, intake.create_app, intake),
                ServiceSpec("payout", payout_settings, payout.create_app, payout),
            ]
        )
        await self.stack.start()
        while not self._sandbox_server.started:
            if self._sandbox_task.done():
                self._sandbox_task.result()
            await asyncio.sleep(0.02)
        return self

    async def close(self) -> None:
        await self.http.aclose()
        if self.stack is not None:
            await self.stack.shutdown()
        if self._sandbox_server is not None and self._sandbox_task is not None:
            self._sandbox_server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sandbox_task, 10)

    # -- who calls ----------------------------------------------------------------------------

    async def as_client(self, client_id: str) -> dict[str, str]:
        """The portal and the agencies sign in as the development clients intake seeds."""
        if client_id not in self.tokens:
            response = await self.http.post(
                f"{self.urls['intake']}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, f"{client_id}-dev-secret"),
            )
            response.raise_for_status()
            self.tokens[client_id] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self.tokens[client_id]

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.token(OPERATOR_SCOPES, sub='life-operator')}"}

    async def intake_call(
        self, client_id: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = await self.as_client(client_id)
        return await self.http.request(
            method, self.urls["intake"] + path, headers=headers, **kwargs
        )

    async def payout_get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(
            self.urls["payout"] + path, params=params, headers=self.operator
        )
        response.raise_for_status()
        return response.json()

    # -- the bank -----------------------------------------------------------------------------

    async def open_accounts(self, rows: list[dict[str, str]]) -> None:
        (
            await self.http.post(f"{self.urls['sandbox']}/admin/accounts", json=rows)
        ).raise_for_status()

    async def plan_bank_answers(self, *answers: str) -> None:
        response = await self.http.put(
            f"{self.urls['sandbox']}/admin/faults", json=bank_faults(answers, READ_TIMEOUT)
        )
        response.raise_for_status()

    def bank_transfers(self) -> list[Any]:
        """What the bank and the post office hold, read from the sandbox's own store, in the
        order received."""
        store = self.sandbox_app.state.sandbox.state.store
        held = store.transfers_by_seq(range(1, store.transfer_count + 1))
        return [held[seq] for seq in sorted(held)]

    # -- waiting ------------------------------------------------------------------------------

    async def settled_between_services(self, timeout: float = 20) -> None:
        """Intake's changes have reached payout, and payout has verified (or refused) every account."""
        assert self.stack is not None
        intake_rt, payout_rt = self.stack.runtime("intake"), self.stack.runtime("payout")
        bus = payout_rt.bus
        deadline = time.monotonic() + timeout
        calm = 0
        while time.monotonic() < deadline:
            status = await self.payout_get("/v1/status")
            busy = (
                await intake_rt.relay().pending_count()
                + await payout_rt.relay().pending_count()
                + await bus.group_lag("payout.intake-view", [BENEFICIARY_TOPIC])
                + await bus.group_lag("intake.account-verification", [ACCOUNT_VERIFICATION_TOPIC])
                + status["verifications"].get("PENDING", 0)
                + status["verifications"].get("IN_PROGRESS", 0)
            )
            calm = calm + 1 if busy == 0 else 0
            if calm >= 2:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("intake and payout did not settle in time")

    async def installments(self, period: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.payout_get(
                "/v1/installments",
                period=period,
                limit=500,
                **({"cursor": cursor} if cursor else {}),
            )
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    async def run_cycle(self, period: str, timeout: float = 20) -> list[dict[str, Any]]:
        """Prepare the period's cycle, approve each agency's part as a checker of it (and any
        supplementary part as it appears), and wait until nothing of it is in flight (on hold
        is visibly pending, not in flight); then the callbacks to come have come."""
        response = await self.http.post(
            f"{self.urls['payout']}/v1/cycles", json={"period": period}, headers=self.operator
        )
        assert response.status_code in (200, 201), response.text
        await self.revalidated(period)
        deadline = time.monotonic() + timeout
        while True:
            await self.approve_waiting(period)
            items = await self.installments(period)
            if all(i["state"] not in IN_FLIGHT for i in items):
                break
            if time.monotonic() > deadline:
                return items  # the caller's invariant names what is still in flight
            await asyncio.sleep(0.1)
        with contextlib.suppress(TimeoutError):
            await self.webhooks_idle()
        return await self.installments(period)

    async def revalidated(self, period: str) -> None:
        """Intake's identity revalidation of the period has reached payout (else nobody is held:
        one empty last part, as the registry would answer for people it confirms)."""
        from tests.payout.harness import revalidate

        assert self.stack is not None
        await revalidate(self.stack.runtime("payout"), period)

    async def approve_waiting(self, period: str) -> None:
        """Every part awaiting approval approved by a checker of its agency (envelopes loaded
        for it first); a part that changed meanwhile is approved on the next call."""
        view = await self.payout_get(f"/v1/cycles/{period}")
        for agency, part in view.get("agencies", {}).items():
            awaiting = part["awaiting_approval"]
            if not awaiting:
                continue
            rows = [
                {"period": period, "agency": agency, "scheme": scheme, "amount": 10**12 - 1}
                for scheme, use in part["envelopes"].items()
                if use["envelope"] is None
            ]
            if rows:
                (
                    await self.http.put(
                        f"{self.urls['payout']}/v1/envelopes",
                        json={"envelopes": rows},
                        headers=self.operator,
                    )
                ).raise_for_status()
            checker = tokens.token(
                sub=f"checker-{agency.lower()}", kind="person", roles={"checker"}, agency=agency
            )
            response = await self.http.post(
                f"{self.urls['payout']}/v1/cycles/{period}/approvals",
                json={"agency": agency, "digest": awaiting["digest"]},
                headers={"Authorization": f"Bearer {checker}"},
            )
            assert response.status_code in (201, 409), response.text

    async def approvals_and_releases(
        self,
    ) -> tuple[list[dict[str, Any]], dict[int, tuple[int, int]], dict[str, int | None]]:
        """Every approval; per approval what its batches released (count, sum); per attempt's
        end-to-end id the approval its batch carries (None: none)."""
        from sqlalchemy import select

        from services.payout.adapters.orm import batches, cycle_approvals, payment_attempts
        from services.payout.adapters.repository.approvals import released_by_approval

        assert self.stack is not None
        runtime = self.stack.runtime("payout")
        async with runtime.session_factory() as session:
            approvals = [
                dict(r) for r in (await session.execute(select(cycle_approvals))).mappings().all()
            ]
            released: dict[int, tuple[int, int]] = {}
            for period in {a["period"] for a in approvals}:
                released.update(await released_by_approval(session, period))
            stamped = (
                await session.execute(
                    select(payment_attempts.c.end_to_end_id, batches.c.approval_id).select_from(
                        payment_attempts.outerjoin(
                            batches, batches.c.batch_id == payment_attempts.c.batch_id
                        )
                    )
                )
            ).all()
        return approvals, released, {str(e2e): approval for e2e, approval in stamped}

    async def webhooks_idle(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = (await self.http.get(f"{self.urls['sandbox']}/admin/webhooks")).json()
            if stats["idle"]:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("callbacks still in flight")


def vn_today() -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
