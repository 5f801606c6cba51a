"""The sandbox's HTTP API: banks (NAPAS-style JSON and ISO 20022 files), the post office and
the admin endpoints used by tests, the demo and benchmarks."""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Query, Request, Response
from pydantic import BaseModel, Field, StrictInt, ValidationError

from .config import SandboxSettings
from .iso import ControlTotalsMismatch, InvalidFile, build_pain002, message_id_of, parse_pain001
from .state import (
    CASH_OUTCOMES,
    PERMANENT_BANK_FAILURES,
    VNPOST,
    Booking,
    Event,
    Faults,
    IsoMessage,
    ItemIn,
    SandboxState,
    StatusReport,
    Transfer,
    utc_now,
)
from .webhooks import WebhookDispatcher

log = logging.getLogger(__name__)


def reply(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def refuse(status_code: int, code: str, **extra: Any) -> Response:
    return reply({"code": code, **extra}, status_code)


# -- request bodies ------------------------------------------------------------------------


class NameInquiryIn(BaseModel):
    account_number: str = Field(min_length=1, max_length=34)


class TransferIn(BaseModel):
    end_to_end_id: str = Field(min_length=1, max_length=64)
    account_number: str = Field(min_length=1, max_length=34)
    account_name: str = ""
    amount: StrictInt
    currency: str = "VND"
    remittance_info: str = ""


class TransferBatchIn(BaseModel):
    batch_id: str = Field(min_length=1, max_length=64)
    control_count: StrictInt
    control_sum: StrictInt
    transfers: list[TransferIn]


class CashItemIn(BaseModel):
    end_to_end_id: str = Field(min_length=1, max_length=64)
    beneficiary_name: str = ""
    amount: StrictInt
    commune_code: str = Field(min_length=1)
    remittance_info: str = ""


class CashListIn(BaseModel):
    list_id: str = Field(min_length=1, max_length=80)
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    commune_code: str = Field(min_length=1)
    control_count: StrictInt
    control_sum: StrictInt
    items: list[CashItemIn]


class AccountIn(BaseModel):
    bin: str = Field(pattern=r"^\d{6}$")
    account_number: str = Field(min_length=1, max_length=34)
    holder_name: str = Field(min_length=1)
    status: Literal["ACTIVE", "CLOSED", "BLOCKED", "DECEASED"] = "ACTIVE"


class CashOutcomeIn(BaseModel):
    end_to_end_id: str = Field(min_length=1)
    outcome: Literal["PAID", "PENDING", "NOT_FOUND", "REFUSED", "DECEASED"]


class ReturnIn(BaseModel):
    reason_code: str = Field("AC04", min_length=2, max_length=35)


class AccountList(BaseModel):
    accounts: list[AccountIn]


class CashOutcomeList(BaseModel):
    outcomes: list[CashOutcomeIn]


def parse_body(model: type[BaseModel], raw: bytes) -> BaseModel | Response:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        return refuse(422, "INVALID_REQUEST", errors=errors[:10])


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# -- the sandbox ---------------------------------------------------------------------------


class Sandbox:
    """State, callbacks and fault injection behind the routes."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.state = SandboxState(settings.iso_bins)
        self.webhooks = WebhookDispatcher(settings, self.state)
        self._timers: set[asyncio.TimerHandle] = set()
        self.bins_by_bic = {
            (row.get("swift") or "")[:8]: bin_ for bin_, row in self.state.banks.items() if row.get("swift")
        }

    def reset(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.webhooks.cancel_all()
        self.webhooks.reset_stats()
        self.state.reset()

    async def latency(self) -> None:
        latency_ms = self.state.faults.latency_ms
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)

    def unavailable(self) -> bool:
        return self.state.request_fault(self.state.faults.error_5xx_rate)

    async def maybe_hold(self) -> None:
        """Injected timeout: the work is done but the answer comes later than the caller waits."""
        faults = self.state.faults
        if self.state.request_fault(faults.timeout_rate):
            await asyncio.sleep(faults.timeout_hold_seconds)

    def conflicting_resend(self, key: tuple[str, ...] | None) -> bool:
        """Injected 409: a resend of a request already taken is refused as a duplicate."""
        return (
            key is not None
            and key in self.state.taken_keys
            and self.state.request_fault(self.state.faults.conflict_on_resend_rate)
        )

    async def ambiguous(self, response: Response) -> Response:
        """Injected ambiguous answers to a request that was taken: a gateway error, an
        unreadable 2xx body, or the answer late."""
        faults = self.state.faults
        state = self.state
        if state.request_fault(faults.error_after_accept_rate):
            status = faults.error_after_accept_status
            return refuse(status, "BAD_GATEWAY" if status == 502 else "GATEWAY_TIMEOUT")
        if state.request_fault(faults.unreadable_answer_rate):
            return Response(response.body[: max(1, len(response.body) // 2)],
                            status_code=response.status_code, media_type="application/json")
        if state.request_fault(faults.slow_answer_rate):
            await asyncio.sleep(faults.slow_answer_seconds)
        return response

    def schedule(self, settle: Callable[[list[Transfer], datetime], list[Event]], new: list[Transfer]) -> None:
        """Settle new transfers at once, or after the settlement delay (one timer per batch)."""
        if not new:
            return
        delay_ms = self.settings.settlement_delay_ms
        if delay_ms <= 0:
            self.webhooks.publish(settle(new, utc_now()))
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            self.webhooks.publish(settle(new, utc_now()))

        handle = loop.call_later(delay_ms / 1000, fire)
        self._timers.add(handle)

    @property
    def scheduled(self) -> int:
        """Settlements and follow-ups (bookings of pending entries, reversals, returns) to come."""
        return len(self._timers)

    def later(self, seconds: float, work: Callable[[], None]) -> None:
        """Run `work` after `seconds` (at once for 0); forgotten on reset."""
        if seconds <= 0:
            work()
            return

        def fire() -> None:
            self._timers.discard(handle)
            work()

        handle = asyncio.get_running_loop().call_later(seconds, fire)
        self._timers.add(handle)

    # -- the file bank ------------------------------------------------------------------------

    def schedule_file(self, message: IsoMessage, new: list[Transfer], refused: list[tuple[str, str]]) -> None:
        """Process a file's new transfers (after the settlement delay): a pain.002 for what is
        rejected (the file as a whole, or transactions, with those refused at intake), camt.054
        entries for what is booked or pending, and what happens later to the booked ones."""
        if not new:
            return
        bin_ = message.bin

        def run() -> None:
            report, bookings = self.state.process_file(message, new, utc_now())
            items: list[Booking | StatusReport] = []
            if report is not None:
                if message.group_rejection is None:
                    report.rejected = [*refused, *report.rejected]
                items.append(report)
            items.extend(bookings)
            self.webhooks.publish_iso(bin_, items)
            for booking in bookings:
                if booking.status == "PDNG":
                    self.later(self.state.faults.pending_seconds, functools.partial(self._book, bin_, booking))
                else:
                    self._booked(bin_, booking)

        self.later(self.settings.settlement_delay_ms / 1000, run)

    def _book(self, bin_: str, pending: Booking) -> None:
        booking = self.state.book_pending(pending, utc_now())
        self.webhooks.publish_iso(bin_, [booking])
        self._booked(bin_, booking)

    def _booked(self, bin_: str, booking: Booking) -> None:
        faults = self.state.faults
        for kind, transfer in self.state.follow_up(booking):
            if kind == "reversal":
                self.later(faults.reversal_delay_seconds,
                           functools.partial(self._reverse, bin_, transfer, booking.reference))
            else:
                reason = self.state.rng.choice(PERMANENT_BANK_FAILURES)
                self.later(faults.late_return_delay_seconds,
                           functools.partial(self._return, bin_, transfer.end_to_end_id, reason))

    def _reverse(self, bin_: str, transfer: Transfer, reverses: str) -> None:
        reversal = self.state.reverse(transfer, reverses, utc_now())
        if reversal is not None:
            self.webhooks.publish_iso(bin_, [reversal])

    def _return(self, bin_: str, end_to_end_id: str, reason: str) -> Event | None:
        event = self.state.return_transfer(end_to_end_id, reason, utc_now())
        if event is not None:
            self.publish_return(event)
        return event

    def publish_return(self, event: Event) -> None:
        if event.transfer.channel == "iso":
            self.webhooks.publish_iso(event.transfer.counterparty, [self.state.return_booking(event)])
        else:
            self.webhooks.publish([event])

    def refuse_file(self, bin_: str, raw: bytes, now: datetime) -> None:
        """A file that fails validation is answered with a pain.002 refusing it as a whole
        (FF01), when its MsgId can be read and no file of that id was taken."""
        message_id = message_id_of(raw)
        if message_id is None or (bin_, message_id) in self.state.iso_messages:
            return
        message = IsoMessage(message_id, bin_, now, 0, 0, [], {}, group_rejection="FF01")
        self.state.iso_messages[(bin_, message_id)] = message
        self.webhooks.publish_iso(bin_, [StatusReport(f"STS{self.state.epoch}{message_id}"[:35], message, [])])


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    settings = settings or SandboxSettings()
    sandbox = Sandbox(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sandbox.webhooks.start()
        try:
            yield
        finally:
            sandbox.reset()
            await sandbox.webhooks.stop()

    app = FastAPI(title="Bank and post-office sandbox", lifespan=lifespan)
    app.state.sandbox = sandbox
    state = sandbox.state

    def unknown_bank(bin_: str) -> Response | None:
        if not state.is_bank(bin_):
            return refuse(404, "BANK_NOT_SUPPORTED")
        return None

    async def guarded(work: Callable[[], Awaitable[Response]]) -> Response:
        """Latency, then an injected 503 (nothing done), else the work, then an injected hold."""
        await sandbox.latency()
        if sandbox.unavailable():
            return refuse(503, "SERVICE_UNAVAILABLE")
        response = await work()
        await sandbox.maybe_hold()
        return response

    async def moves_money(key: tuple[str, ...] | None, work: Callable[[], Awaitable[Response]]) -> Response:
        """`guarded` for requests that move money, keyed by their idempotency key: a resend may
        meet an injected 409, a taken request an injected ambiguous answer."""
        await sandbox.latency()
        if sandbox.unavailable():
            return refuse(503, "SERVICE_UNAVAILABLE")
        if sandbox.conflicting_resend(key):
            return refuse(409, "DUPLICATE_REQUEST")
        response = await work()
        if 200 <= response.status_code < 300:
            if key is not None:
                state.taken_keys.add(key)
            response = await sandbox.ambiguous(response)
        await sandbox.maybe_hold()
        return response

    @app.get("/health")
    async def health() -> Response:
        return reply({"status": "ok"})

    # -- banks: NAPAS-style JSON ---------------------------------------------------------

    @app.post("/banks/{bin_}/name-inquiry")
    async def name_inquiry(bin_: str, request: Request) -> Response:
        if (refused := unknown_bank(bin_)) is not None:
            return refused
        raw = await request.body()

        async def work() -> Response:
            body = parse_body(NameInquiryIn, raw)
            if isinstance(body, Response):
                return body
            account = state.account(bin_, body.account_number)
            if account is None or account.status == "CLOSED":
                return refuse(404, "ACCOUNT_NOT_FOUND")
            return reply({"account_number": body.account_number, "account_name": account.holder_name})

        return await guarded(work)

    @app.post("/banks/{bin_}/transfers")
    async def submit_transfers(bin_: str, request: Request) -> Response:
        if (refused := unknown_bank(bin_)) is not None:
            return refused
        if state.is_iso_bank(bin_):
            return refuse(404, "CHANNEL_NOT_SUPPORTED", detail="this bank takes ISO 20022 files")
        raw = await request.body()
        idempotency_key = request.headers.get("idempotency-key")

        async def work() -> Response:
            body = parse_body(TransferBatchIn, raw)
            if isinstance(body, Response):
                return body
            transfers = body.transfers
            if body.control_count != len(transfers) or body.control_sum != sum(t.amount for t in transfers):
                return refuse(422, "CONTROL_TOTALS_MISMATCH")
            key = ("banks", bin_, idempotency_key or body.batch_id)
            intake = state.take(
                bin_,
                "napas",
                key,
                (
                    ItemIn(t.end_to_end_id, t.amount, t.currency, t.account_number, bin_)
                    for t in transfers
                ),
                utc_now(),
            )
            sandbox.schedule(state.settle_bank, intake.new)
            return reply(
                {
                    "batch_id": body.batch_id,
                    "accepted": intake.accepted,
                    "rejected": [{"end_to_end_id": e, "reason_code": c} for e, c in intake.rejected],
                },
                202,
            )

        return await moves_money(("banks", bin_, idempotency_key) if idempotency_key else None, work)

    async def transfer_status(bin_: str, end_to_end_id: str) -> Response:
        if (refused := unknown_bank(bin_)) is not None:
            return refused
        await sandbox.latency()
        transfer = state.transfer_for(bin_, end_to_end_id)
        if transfer is None or transfer.channel == "vnpost":
            return refuse(404, "NOT_FOUND")
        return reply(state.bank_status(transfer))

    async def statement(bin_: str, day_text: str) -> Response:
        if (refused := unknown_bank(bin_)) is not None:
            return refused
        day = parse_day(day_text)
        if day is None:
            return refuse(422, "INVALID_DATE")
        await sandbox.latency()
        return reply(state.bank_statement(bin_, day))

    @app.get("/banks/{bin_}/transfers/{end_to_end_id}")
    async def bank_transfer_status(bin_: str, end_to_end_id: str) -> Response:
        return await transfer_status(bin_, end_to_end_id)

    @app.get("/banks/{bin_}/statements/{day}")
    async def bank_statement(bin_: str, day: str) -> Response:
        return await statement(bin_, day)

    # -- banks: ISO 20022 files ----------------------------------------------------------

    @app.post("/iso/{bin_}/files")
    async def submit_file(bin_: str, request: Request) -> Response:
        if (refused := unknown_bank(bin_)) is not None:
            return refused
        if not state.is_iso_bank(bin_):
            return refuse(404, "CHANNEL_NOT_SUPPORTED", detail="this bank takes JSON transfers")
        raw = await request.body()
        idempotency_key = request.headers.get("idempotency-key")

        async def work() -> Response:
            try:
                document = parse_pain001(raw, sandbox.bins_by_bic, bin_)
            except InvalidFile as exc:
                sandbox.refuse_file(bin_, raw, utc_now())
                return refuse(400, "INVALID_FILE", reason_code="FF01", errors=exc.errors)
            except ControlTotalsMismatch:
                return refuse(422, "CONTROL_TOTALS_MISMATCH")
            key = ("iso", bin_, document.message_id)
            intake = state.take(
                bin_, "iso", key, document.items, utc_now(), debtor_account=document.debtor_account
            )
            known = state.iso_messages.get((bin_, document.message_id))
            if known is None or (known.group_rejection is not None and not known.payment_infos):
                # A file refused unread may come again, now valid, under the same id.
                known = state.iso_messages[(bin_, document.message_id)] = IsoMessage(
                    message_id=document.message_id,
                    bin=bin_,
                    received_at=utc_now(),
                    number_of_transactions=document.number_of_transactions,
                    control_sum=int(document.control_sum or sum(i.amount for i in document.items if i.amount > 0)),
                    payment_infos=[
                        (info_id, [item.end_to_end_id for item in items])
                        for info_id, items in document.payment_infos
                    ],
                    rejected=dict(intake.rejected),
                )
            info_of = {item.end_to_end_id: info_id for info_id, items in document.payment_infos for item in items}
            for transfer in intake.new:
                transfer.message_id = document.message_id
                transfer.payment_info_id = info_of.get(transfer.end_to_end_id) or None
            refused = [(e2e, code) for e2e, code in intake.rejected if e2e not in state.transfers]
            sandbox.schedule_file(known, intake.new, refused)
            return reply(
                {
                    "message_id": document.message_id,
                    "accepted": len(intake.accepted),
                    "rejected": [{"end_to_end_id": e, "reason_code": c} for e, c in intake.rejected],
                },
                202,
            )

        return await moves_money(("iso", bin_, idempotency_key) if idempotency_key else None, work)

    @app.get("/iso/{bin_}/files/{message_id}/status")
    async def file_status(bin_: str, message_id: str) -> Response:
        if (refused := unknown_bank(bin_)) is not None:
            return refused
        await sandbox.latency()
        message = state.iso_messages.get((bin_, message_id))
        if message is None:
            return refuse(404, "NOT_FOUND")
        document = build_pain002(message, state.transfers, f"STS{state.epoch}{message_id}"[:35], utc_now())
        return Response(document, media_type="application/xml")

    @app.get("/iso/{bin_}/transfers/{end_to_end_id}")
    async def iso_transfer_status(bin_: str, end_to_end_id: str) -> Response:
        return await transfer_status(bin_, end_to_end_id)

    @app.get("/iso/{bin_}/statements/{day}")
    async def iso_statement(bin_: str, day: str) -> Response:
        return await statement(bin_, day)

    # -- the post office -----------------------------------------------------------------

    @app.post("/vnpost/cash-lists")
    async def submit_cash_list(request: Request) -> Response:
        raw = await request.body()
        idempotency_key = request.headers.get("idempotency-key")

        async def work() -> Response:
            body = parse_body(CashListIn, raw)
            if isinstance(body, Response):
                return body
            items = body.items
            if body.control_count != len(items) or body.control_sum != sum(i.amount for i in items):
                return refuse(422, "CONTROL_TOTALS_MISMATCH")
            intake = state.take(
                VNPOST,
                "vnpost",
                ("vnpost", body.list_id),
                (
                    ItemIn(
                        i.end_to_end_id,
                        i.amount,
                        commune_code=i.commune_code,
                        rejection=None if i.commune_code == body.commune_code else "COMMUNE_MISMATCH",
                    )
                    for i in items
                ),
                utc_now(),
                list_id=body.list_id,
            )
            sandbox.schedule(state.settle_cash, intake.new)
            return reply(
                {
                    "list_id": body.list_id,
                    "accepted": intake.accepted,
                    "rejected": [{"end_to_end_id": e, "reason_code": c} for e, c in intake.rejected],
                },
                202,
            )

        return await moves_money(("vnpost", idempotency_key) if idempotency_key else None, work)

    @app.get("/vnpost/items/{end_to_end_id}")
    async def cash_item(end_to_end_id: str) -> Response:
        await sandbox.latency()
        transfer = state.transfer_for(VNPOST, end_to_end_id)
        if transfer is None:
            return refuse(404, "NOT_FOUND")
        return reply(state.cash_status(transfer))

    @app.get("/vnpost/statements/{day}")
    async def cash_statement(day: str) -> Response:
        parsed = parse_day(day)
        if parsed is None:
            return refuse(422, "INVALID_DATE")
        await sandbox.latency()
        return reply(state.cash_statement(parsed))

    # -- admin ---------------------------------------------------------------------------

    @app.post("/admin/accounts")
    async def seed_accounts(request: Request) -> Response:
        raw = await request.body()
        wrapped = b'{"accounts":' + raw + b"}"
        body = parse_body(AccountList, wrapped)
        if isinstance(body, Response):
            return body
        unknown = sorted({a.bin for a in body.accounts if not state.is_bank(a.bin)})
        if unknown:
            return refuse(422, "BANK_NOT_SUPPORTED", bins=unknown)
        count = state.seed_accounts(
            (a.bin, a.account_number, a.holder_name, a.status) for a in body.accounts
        )
        return reply({"seeded": count, "accounts": len(state.accounts)})

    @app.get("/admin/faults")
    async def get_faults() -> Response:
        return reply(state.faults.model_dump())

    @app.put("/admin/faults")
    async def put_faults(request: Request) -> Response:
        body = parse_body(Faults, await request.body())
        if isinstance(body, Response):
            return body
        state.set_faults(body)
        return reply(state.faults.model_dump())

    @app.put("/admin/vnpost/outcomes")
    async def set_cash_outcomes(request: Request) -> Response:
        raw = await request.body()
        body = parse_body(CashOutcomeList, b'{"outcomes":' + raw + b"}")
        if isinstance(body, Response):
            return body
        now_pending: list[Transfer] = []
        for row in body.outcomes:
            assert row.outcome in CASH_OUTCOMES
            state.cash_presets[row.end_to_end_id] = row.outcome
            transfer = state.transfer_for(VNPOST, row.end_to_end_id)
            if transfer is not None and transfer.status == "PENDING" and row.outcome != "PENDING":
                now_pending.append(transfer)
        sandbox.webhooks.publish(state.settle_cash(now_pending, utc_now()))
        return reply({"updated": len(body.outcomes), "confirmed": len(now_pending)})

    @app.post("/admin/transfers/{end_to_end_id}/return")
    async def return_transfer(end_to_end_id: str, request: Request) -> Response:
        raw = await request.body()
        body = parse_body(ReturnIn, raw or b"{}")
        if isinstance(body, Response):
            return body
        event = state.return_transfer(end_to_end_id, body.reason_code, utc_now())
        if event is None:
            return refuse(409, "NOT_RETURNABLE")
        sandbox.publish_return(event)
        return reply(state.bank_status(event.transfer))

    @app.get("/admin/ledger")
    async def ledger() -> Response:
        return reply(state.ledger())

    @app.get("/admin/ledger/entries")
    async def ledger_entries(
        limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0)
    ) -> Response:
        return reply(state.ledger_entries(limit, offset))

    @app.get("/admin/webhooks")
    async def webhook_stats() -> Response:
        # Idle only when nothing is left to happen either: a pending entry still to be booked,
        # a reversal or a late return still to come.
        scheduled = sandbox.scheduled
        return reply({**sandbox.webhooks.stats(), "scheduled": scheduled,
                      "idle": sandbox.webhooks.idle and scheduled == 0})

    @app.get("/admin/config")
    async def config() -> Response:
        shown = settings.model_dump(exclude={"webhook_secrets"})
        shown["webhook_secret_counterparties"] = sorted(settings.webhook_secrets)
        return reply(shown)

    @app.post("/admin/reset")
    async def reset() -> Response:
        sandbox.reset()
        return reply({"status": "reset"})

    return app
