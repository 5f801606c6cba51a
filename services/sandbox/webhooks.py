"""Outcome callbacks: events are grouped per destination (up to `webhook_batch_size` per
delivery, after `webhook_delay_ms`), signed, posted, and retried with backoff until a 2xx.
Injected faults send a delivery twice or hold it back so that later deliveries overtake it.

The file bank's callbacks are ISO 20022 documents: camt.054 notifications of its bookings (an
entry is never split across deliveries; a delivery holds whole entries up to the batch size in
transactions, or one larger entry) and the pain.002 reports it sends of its own accord.

A receiver slower than the payments leaves callbacks waiting: a route keeps `MEMORY_WEIGHT`
transactions of them in memory and spills the rest to the store, and new deliveries start
only while fewer than `IN_FLIGHT_PER_GATE` per concurrent post are under way (rendered,
posting or waiting to retry), so what waits costs no memory however long the backlog."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from shared.clock import utcnow
from shared.webhook_signing import secret_for, signed_headers

from .config import SandboxSettings
from .iso import build_camt054, build_pain002
from .state import Booking, Event, Route, SandboxState, StatusReport, iso_utc
from .store import BankStore, Spilled

log = logging.getLogger(__name__)


def _napas_event(event: Event) -> dict[str, Any]:
    transfer = event.transfer
    return {
        "event_id": event.event_id,
        "type": event.kind,
        "end_to_end_id": transfer.end_to_end_id,
        "amount": transfer.amount,
        "bank_reference": transfer.reference,
        "reason_code": event.reason_code,
        "occurred_at": iso_utc(event.occurred_at),
    }


def _cash_event(event: Event) -> dict[str, Any]:
    transfer = event.transfer
    paid = event.kind == "cash.paid"
    return {
        "event_id": event.event_id,
        "type": event.kind,
        "end_to_end_id": transfer.end_to_end_id,
        "amount": transfer.amount,
        "receipt_number": transfer.reference,
        "paid_on": transfer.paid_on.isoformat() if paid and transfer.paid_on else None,
        "staff_id": transfer.staff_id,
        "return_reason": None if paid else event.reason_code,
        "occurred_at": iso_utc(event.occurred_at),
    }


MEMORY_WEIGHT = 5_000  # transactions of a route's waiting callbacks kept in memory
IN_FLIGHT_PER_GATE = 2  # deliveries under way per webhook_concurrency


# A callback waiting to go: an event, a JSON event already rendered (the events of a JSON route
# go to the store so: nothing to look up again), a booking or a report of the file bank.
Waiting = Event | Spilled


def _weight(item: Waiting) -> int:
    return len(item.transfers) if isinstance(item, Booking) else 1


def _rendered(route: Route, item: Waiting) -> Spilled:
    if isinstance(item, Event):
        return _cash_event(item) if route[0] == "vnpost" else _napas_event(item)
    return item


class CallbackQueue:
    """One route's callbacks waiting to go, oldest first: in memory up to `MEMORY_WEIGHT`
    transactions, the rest in the store until the memory has room (and while any wait there,
    newer ones go there too, to keep the order)."""

    def __init__(self, route: Route, store: BankStore) -> None:
        self.route = route
        self.key = "/".join(route)
        self.store = store
        self._memory: deque[Waiting] = deque()
        self._weight = 0
        self._spilled = 0

    def __len__(self) -> int:
        return len(self._memory) + self._spilled

    def push(self, items: list[Waiting]) -> None:
        kept = 0
        if not self._spilled:
            for item in items:
                if self._weight >= MEMORY_WEIGHT:
                    break
                self._memory.append(item)
                self._weight += _weight(item)
                kept += 1
        if kept < len(items):
            spilled = [_rendered(self.route, item) for item in items[kept:]]
            self.store.spill_callbacks(self.key, spilled)
            self._spilled += len(spilled)

    def pop(self, count: int) -> list[Waiting]:
        """Up to `count` of the oldest."""
        out: list[Waiting] = []
        while len(out) < count:
            if not self._memory:
                if not self._spilled:
                    break
                loaded = self.store.take_spilled_callbacks(self.key, count - len(out))
                self._spilled -= len(loaded)
                self._memory.extend(loaded)
                self._weight += sum(map(_weight, loaded))
            item = self._memory.popleft()
            self._weight -= _weight(item)
            out.append(item)
        return out


class WebhookDispatcher:
    def __init__(self, settings: SandboxSettings, state: SandboxState) -> None:
        self.settings = settings
        self.state = state
        self.client: httpx.AsyncClient | None = None
        self._queues: dict[Route, CallbackQueue] = {}
        self._flushers: dict[Route, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._gate = asyncio.Semaphore(settings.webhook_concurrency)
        self._most_in_flight = IN_FLIGHT_PER_GATE * settings.webhook_concurrency
        self._delivered = asyncio.Event()  # set when a delivery is done: room for the next
        self._jitter = random.Random()
        self._sequence = 0
        self.reset_stats()

    def reset_stats(self) -> None:
        self.events_published = 0
        self.deliveries_sent = 0
        self.duplicate_deliveries = 0
        self.reordered_deliveries = 0
        self.failed_attempts = 0
        self.abandoned_deliveries = 0

    async def start(self) -> None:
        self.client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_seconds,
            limits=httpx.Limits(max_connections=self.settings.webhook_concurrency * 2),
        )

    async def stop(self) -> None:
        self.cancel_all()
        if self.client is not None:
            await self.client.aclose()

    def cancel_all(self) -> None:
        for task in list(self._flushers.values()) + list(self._tasks):
            task.cancel()
        self._flushers.clear()
        self._tasks.clear()
        self._queues.clear()
        self.state.store.drop_spilled_callbacks()

    def stats(self) -> dict[str, int]:
        return {
            "queued_events": sum(len(q) for q in self._queues.values()),
            "in_flight_deliveries": len(self._tasks),
            "events_published": self.events_published,
            "deliveries_sent": self.deliveries_sent,
            "duplicate_deliveries": self.duplicate_deliveries,
            "reordered_deliveries": self.reordered_deliveries,
            "failed_attempts": self.failed_attempts,
            "abandoned_deliveries": self.abandoned_deliveries,
        }

    @property
    def idle(self) -> bool:
        return not self._queues and not self._flushers and not self._tasks

    # -- publishing -----------------------------------------------------------------------

    @staticmethod
    def route_of(event: Event) -> Route:
        transfer = event.transfer
        if transfer.channel == "vnpost":
            return ("vnpost", "VNPOST")
        return ("iso" if transfer.channel == "iso" else "banks", transfer.counterparty)

    def publish(self, events: Iterable[Event]) -> None:
        by_route: dict[Route, list[Waiting]] = {}
        for event in events:
            by_route.setdefault(self.route_of(event), []).append(event)
        for route, items in by_route.items():
            self._enqueue(route, items)

    def publish_iso(self, bin_: str, items: Iterable[Booking | StatusReport]) -> None:
        """camt.054 entries and pain.002 reports of the file bank `bin_`."""
        self._enqueue(("iso", bin_), list(items))

    def _enqueue(self, route: Route, items: list[Waiting]) -> None:
        if not items:
            return
        queue = self._queues.get(route)
        if queue is None:
            queue = self._queues[route] = CallbackQueue(route, self.state.store)
        queue.push(items)
        self.events_published += len(items)
        if route not in self._flushers:
            self._flushers[route] = self._spawn(self._flush(route), track=False)

    @staticmethod
    def _deliveries(items: list[Any], size: int) -> list[list[Any]]:
        """Items cut into deliveries of at most `size` transactions; a report goes alone and an
        entry is never cut."""
        out: list[list[Any]] = []
        current: list[Any] = []
        count = 0
        for item in items:
            if isinstance(item, StatusReport):
                out.append([item])
                continue
            weight = len(item.transfers) if isinstance(item, Booking) else 1
            if current and count + weight > size:
                out.append(current)
                current, count = [], 0
            current.append(item)
            count += weight
        if current:
            out.append(current)
        return out

    def _spawn(self, coroutine: Any, track: bool = True) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        if track:
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._delivered.set()

    async def _flush(self, route: Route) -> None:
        """After the delay, send what the route holds then, as deliveries, as fast as there is
        room for them; what comes meanwhile waits for the next flush."""
        delay_ms = self.settings.webhook_delay_ms + self.state.faults.callback_delay_ms
        await asyncio.sleep(delay_ms / 1000)
        queue = self._queues[route]
        size = self.settings.webhook_batch_size
        left = len(queue)
        while left:
            while len(self._tasks) >= self._most_in_flight:
                self._delivered.clear()
                await self._delivered.wait()
            items = queue.pop(min(left, size * self.settings.webhook_concurrency))
            left -= len(items)
            for delivery in self._deliveries(items, size):
                self._spawn(self._deliver(route, delivery))
        # No await from here on: a callback published after this starts a new flush.
        self._flushers.pop(route, None)
        if queue:
            self._flushers[route] = self._spawn(self._flush(route), track=False)
        else:
            del self._queues[route]

    # -- delivering -----------------------------------------------------------------------

    def _delivery_id(self, route: Route) -> str:
        self._sequence += 1
        prefix = "CAMT" if route[0] == "iso" else "DLV"
        return f"{prefix}{self.state.epoch}{self._sequence:010d}"

    def _destination(self, route: Route) -> tuple[str, str]:
        kind, counterparty = route
        root = self.settings.callback_root
        if kind == "vnpost":
            return f"{root}/v1/webhooks/vnpost", counterparty
        return f"{root}/v1/webhooks/{kind}/{counterparty}", counterparty

    def _render(self, route: Route, delivery_id: str, events: list[Any]) -> tuple[bytes, str]:
        kind = route[0]
        if kind == "iso":
            first = events[0]
            if isinstance(first, StatusReport):
                document = build_pain002(
                    first.message,
                    self.state.file_lines(first.message),
                    first.report_id,
                    utcnow(),
                    only=first.rejected,
                )
                return document, "application/xml"
            return build_camt054(delivery_id, events, utcnow()), "application/xml"
        events = [_rendered(route, event) for event in events]
        body = {"delivery_id": delivery_id, "events": events}
        return orjson.dumps(body), "application/json"

    async def _deliver(self, route: Route, events: list[Any]) -> None:
        state = self.state
        faults = state.faults
        delivery_id = self._delivery_id(route)
        duplicate = state.chance(faults.duplicate_callback_rate)
        if state.chance(faults.reorder_callback_rate):
            events = list(events)
            state.rng.shuffle(events)
            self.reordered_deliveries += 1
            hold_ms = 100 + 3 * (self.settings.webhook_delay_ms + faults.callback_delay_ms)
            await asyncio.sleep(state.rng.uniform(0.2, 1.0) * hold_ms / 1000)
        body, content_type = self._render(route, delivery_id, events)
        await self._post(route, body, content_type)
        if duplicate:
            self.duplicate_deliveries += 1
            await self._post(route, body, content_type)

    async def _post(self, route: Route, body: bytes, content_type: str) -> None:
        url, counterparty = self._destination(route)
        secret = secret_for(counterparty, self.settings.webhook_secrets)
        settings = self.settings
        assert self.client is not None
        for attempt in range(settings.webhook_max_attempts):
            headers = signed_headers(counterparty, secret, body)
            headers["Content-Type"] = content_type
            try:
                async with self._gate:
                    response = await self.client.post(url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    self.deliveries_sent += 1
                    return
                log.info(
                    "callback refused",
                    extra={
                        "fields": {
                            "route": route[0],
                            "counterparty": counterparty,
                            "status": response.status_code,
                            "attempt": attempt + 1,
                        }
                    },
                )
            except httpx.HTTPError as exc:
                log.info(
                    "callback not delivered",
                    extra={
                        "fields": {
                            "route": route[0],
                            "counterparty": counterparty,
                            "error": type(exc).__name__,
                            "attempt": attempt + 1,
                        }
                    },
                )
            self.failed_attempts += 1
            if attempt + 1 < settings.webhook_max_attempts:
                backoff = min(
                    settings.webhook_retry_base_ms * 2**attempt, settings.webhook_retry_max_ms
                )
                await asyncio.sleep(backoff * (0.5 + self._jitter.random() / 2) / 1000)
        self.abandoned_deliveries += 1
        log.warning(
            "callback abandoned",
            extra={"fields": {"route": route[0], "counterparty": counterparty}},
        )
