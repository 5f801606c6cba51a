"""No money moves without a second officer's approval: the rules of approving (or rejecting)
what a cycle prepared for one agency. Pure: the caller reads, asks these, and writes.

What awaits approval for a period and an agency is the attempts in its PREPARED batches. Its
digest is the SHA-256 of a canonical JSON of the period, the agency, its counts and sums by
scheme, channel and counterparty, and the ordered list of (installment id, amount,
counterparty, method id): an approval names the digest of the totals the checker was shown, and
is refused if anything changed since.

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


def _totals(items: Iterable[Item], key: str) -> dict[str, Total]:
    counts: dict[str, list[int]] = {}
    for item in items:
        slot = counts.setdefault(getattr(item, key), [0, 0])
        slot[0] += 1
        slot[1] += item.amount
    return {k: Total(c, a) for k, (c, a) in sorted(counts.items())}


def _plain(totals: Mapping[str, Total]) -> dict[str, list[int]]:
    return {k: [t.count, t.amount] for k, t in sorted(totals.items())}


def awaiting(period: str, agency: str, items: Sequence[Item]) -> Awaiting:
    """The totals and the digest of `items` (in installment id order, as the repository reads
    them; sorted here again so the digest never depends on a query plan)."""
    ordered = sorted(items, key=lambda i: (i.installment_id, i.counterparty))
    by_scheme = _totals(ordered, "scheme")
    by_channel = _totals(ordered, "channel")
    by_counterparty = _totals(ordered, "counterparty")
    canonical = json.dumps(
        {
            "period": period,
            "agency": agency,
            "count": len(ordered),
            "amount": sum(i.amount for i in ordered),
            "by_scheme": _plain(by_scheme),
            "by_channel": _plain(by_channel),
            "by_counterparty": _plain(by_counterparty),
            "items": [[i.installment_id, i.amount, i.counterparty, i.method_id] for i in ordered],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return Awaiting(
        period=period,
        agency=agency,
        count=len(ordered),
        amount=sum(i.amount for i in ordered),
        by_scheme=by_scheme,
        by_channel=by_channel,
        by_counterparty=by_counterparty,
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
    )


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
