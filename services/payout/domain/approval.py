"""No money moves without a second officer's approval: the rules of approving (or rejecting)
what a cycle prepared for one agency. Pure: the caller reads, asks these, and writes.

What awaits approval for a period and an agency is the attempts in its PREPARED batches. An
approval names the digest of what the checker was shown, and is refused if anything changed
since. The digest is folded item by item, so a part of a million never sits in memory:

    items  = SHA-256 of the JSON array [[installment_id, amount, counterparty, method_id], ...]
             of every item in (installment id, counterparty) order
    digest = SHA-256 of the JSON object {"period", "agency", "count", "amount", "by_scheme",
             "by_channel", "by_counterparty" (each {key: [count, amount]}), "items": <hex>}

both JSON with sorted keys, no spaces, ASCII only (`json.dumps(..., sort_keys=True,
separators=(",", ":"))`), encoded UTF-8; the digest is its hex. The items come in that order
from the repository (ORDER BY in SQL, never a query plan's whim) and are refused out of it.

An approval is refused when the caller is not a person holding `cycles:approve` for the agency
(403), prepared any of it (403, four eyes), the cycle is not prepared (409), the digest is not
the current one (409), or it would take a scheme over the agency's envelope for the period
(422; no envelope loaded refuses too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal

from shared.auth import Principal

APPROVE = "APPROVE"
REJECT = "REJECT"
Decision = Literal["APPROVE", "REJECT"]
APPROVE_SCOPE = "cycles:approve"
PROBLEMS = "https://benefits.example.vn/problems/"


@dataclass(frozen=True, slots=True)
class Item:
    """One attempt awaiting approval."""

    installment_id: int
    amount: int
    scheme: str
    channel: str
    counterparty: str
    method_id: str | None


@dataclass(frozen=True, slots=True)
class Total:
    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class Awaiting:
    """What awaits approval for a period and an agency, and its digest."""

    period: str
    agency: str
    count: int
    amount: int
    by_scheme: dict[str, Total]
    by_channel: dict[str, Total]
    by_counterparty: dict[str, Total]
    digest: str


@dataclass(frozen=True, slots=True)
class Excess:
    scheme: str
    envelope: int | None  # None: no envelope loaded for the scheme and period
    approved: int  # already approved this period
    requested: int  # this part
    excess: int


@dataclass
class ApprovalRefused(Exception):
    """Why an approval (or a rejection) cannot be recorded; maps onto a problem+json."""

    status: int
    kind: str  # the problem type's last segment
    title: str
    detail: str
    extensions: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail

    @property
    def type_uri(self) -> str:
        return PROBLEMS + self.kind


class ItemsOutOfOrder(ValueError):
    """The items did not come in the digest's order: the reader broke its promise."""


FOLD_CHUNK = 1_000  # items JSON-encoded at once: one C call each, a bounded string


class Tally:
    """What awaits, folded chunk by chunk in the digest's order: the count, the amount, the
    totals per (scheme, channel, counterparty), and the running hash of the items. Memory is
    one chunk's, however many items pass."""

    def __init__(self) -> None:
        self._items = hashlib.sha256(b"[")
        self._last: tuple[int, str] | None = None
        self._routes: dict[tuple[str, str, str], list[int]] = {}  # [count, amount]
        self.count = 0

    def add(self, items: Iterable[Item]) -> None:
        """Fold these items, which come after those folded before (raises ItemsOutOfOrder)."""
        stream = iter(items)
        while chunk := list(islice(stream, FOLD_CHUNK)):
            self._fold(chunk)

    def _fold(self, chunk: list[Item]) -> None:
        routes, last = self._routes, self._last
        for item in chunk:
            key = (item.installment_id, item.counterparty)
            if last is not None and key < last:
                raise ItemsOutOfOrder(f"item {key} came after {last}")
            last = key
            route = (item.scheme, item.channel, item.counterparty)
            slot = routes.get(route)
            if slot is None:
                slot = routes[route] = [0, 0]
            slot[0] += 1
            slot[1] += item.amount
        # The chunk's array without its brackets: the same bytes as one array of all the items.
        encoded = _canonical(
            [[i.installment_id, i.amount, i.counterparty, i.method_id] for i in chunk]
        )
        self._items.update((b"," if self.count else b"") + encoded[1:-1].encode())
        self.count += len(chunk)
        self._last = last

    def awaiting(self, period: str, agency: str) -> Awaiting:
        """The totals and the digest of what was folded, for the period and the agency."""
        items = self._items.copy()
        items.update(b"]")
        by_scheme, by_channel, by_counterparty = (self._total_by(part) for part in range(3))
        amount = sum(t.amount for t in by_scheme.values())
        header = {
            "period": period,
            "agency": agency,
            "count": self.count,
            "amount": amount,
            "by_scheme": _plain(by_scheme),
            "by_channel": _plain(by_channel),
            "by_counterparty": _plain(by_counterparty),
            "items": items.hexdigest(),
        }
        return Awaiting(
            period=period,
            agency=agency,
            count=self.count,
            amount=amount,
            by_scheme=by_scheme,
            by_channel=by_channel,
            by_counterparty=by_counterparty,
            digest=hashlib.sha256(_canonical(header).encode()).hexdigest(),
        )

    def _total_by(self, part: int) -> dict[str, Total]:
        sums: dict[str, list[int]] = {}
        for route, (count, amount) in self._routes.items():
            slot = sums.setdefault(route[part], [0, 0])
            slot[0] += count
            slot[1] += amount
        return {k: Total(c, a) for k, (c, a) in sorted(sums.items())}


def _plain(totals: Mapping[str, Total]) -> dict[str, list[int]]:
    return {k: [t.count, t.amount] for k, t in totals.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def awaiting(period: str, agency: str, items: Iterable[Item]) -> Awaiting:
    """The totals and the digest of `items`, in the digest's order (installment id, then
    counterparty), as the repository reads them: a one-shot stream is enough."""
    tally = Tally()
    tally.add(items)
    return tally.awaiting(period, agency)


def check_approver(principal: Principal, agency: str, preparers: Iterable[str]) -> None:
    """A person holding `cycles:approve`, of the agency, who prepared none of what awaits."""
    if not principal.is_person:
        raise ApprovalRefused(
            403,
            "approver-not-a-person",
            "Forbidden",
            "only a signed-in officer (a checker) may approve or reject a cycle; a client may not",
        )
    if not principal.can(APPROVE_SCOPE):
        raise ApprovalRefused(
            403, "insufficient-scope", "Forbidden", f"approving needs the scope {APPROVE_SCOPE}"
        )
    if principal.agency != agency:
        raise ApprovalRefused(
            403,
            "other-agency",
            "Forbidden",
            f"a checker approves for their own agency only; this part is {agency}'s",
        )
    if principal.client_id in set(preparers):
        raise ApprovalRefused(
            403,
            "four-eyes",
            "Forbidden",
            "the officer who prepared this part of the cycle may not approve or reject it: "
            "a second officer must",
        )


def check_prepared(*, creation_finished: bool, revalidated: bool, count: int) -> None:
    """The cycle is prepared for the agency: created, revalidated, and something awaits."""
    waits = []
    if not creation_finished:
        waits.append("its creation to finish")
    if not revalidated:
        waits.append("the identity revalidation of its beneficiaries")
    if waits:
        raise ApprovalRefused(
            409,
            "cycle-not-prepared",
            "Conflict",
            "the cycle is not prepared yet: it waits for " + " and ".join(waits),
            {"waiting_for": waits},
        )
    if not count:
        raise ApprovalRefused(
            409,
            "cycle-not-prepared",
            "Conflict",
            "nothing of this agency awaits approval in the cycle",
            {"waiting_for": []},
        )


def part_state(*, waiting: bool, decisions: Sequence[str]) -> str:
    """An agency's part of a cycle: batches waiting (sent back by its last decision, or
    awaiting approval), or nothing waiting (approved before, or nothing to approve)."""
    if waiting:
        return "REJECTED" if decisions and decisions[-1] == REJECT else "AWAITING_APPROVAL"
    return "APPROVED" if APPROVE in decisions else "NOTHING_TO_APPROVE"


def cycle_state(*, creation_finished: bool, revalidated: bool, waiting: bool, decided: bool) -> str:
    """A cycle as its checkers see it: still being made, waiting for the identities, prepared
    (something awaits a decision), approved, or nothing to approve."""
    if not creation_finished:
        return "CREATING"
    if not revalidated:
        return "AWAITING_REVALIDATION"
    if waiting:
        return "PREPARED"
    return "APPROVED" if decided else "NOTHING_TO_APPROVE"


def check_digest(given: str, current: Awaiting) -> None:
    if given != current.digest:
        raise ApprovalRefused(
            409,
            "stale-approval",
            "Conflict",
            "the cycle changed since these totals were shown: read them again and approve "
            "what it holds now",
            {"current_digest": current.digest},
        )


def envelope_excesses(
    requested: Mapping[str, Total],
    approved: Mapping[str, int],
    envelopes: Mapping[str, int],
) -> list[Excess]:
    """Per scheme: what the period already approved plus this part, against the envelope; the
    schemes it exceeds (a missing envelope exceeds by the whole amount)."""
    excesses = []
    for scheme, total in sorted(requested.items()):
        envelope = envelopes.get(scheme)
        already = approved.get(scheme, 0)
        over = already + total.amount - (envelope if envelope is not None else 0)
        if envelope is None or over > 0:
            excesses.append(Excess(scheme, envelope, already, total.amount, max(over, 0)))
    return excesses


def check_envelopes(excesses: Sequence[Excess], agency: str) -> None:
    if not excesses:
        return
    parts = [
        f"{e.scheme}: no envelope loaded for the period (requested {e.requested:,} VND)"
        if e.envelope is None
        else f"{e.scheme}: envelope {e.envelope:,} VND, approved {e.approved:,}, requested "
        f"{e.requested:,}, over by {e.excess:,}"
        for e in excesses
    ]
    raise ApprovalRefused(
        422,
        "over-envelope",
        "Unprocessable Content",
        f"this part would take {agency} over its funds envelope: " + "; ".join(parts),
        {
            "schemes": [
                {
                    "scheme": e.scheme,
                    "envelope": e.envelope,
                    "approved": e.approved,
                    "requested": e.requested,
                    "excess": e.excess,
                }
                for e in excesses
            ]
        },
    )


def check_reason(decision: str, reason: str | None) -> None:
    if decision == REJECT and not (reason and reason.strip()):
        raise ApprovalRefused(
            422, "reason-required", "Unprocessable Content", "a rejection must say why (reason)"
        )
