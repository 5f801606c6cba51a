"""What must hold after a fault run, as pure functions of what was read from payout's database
and API, the sandbox's own ledger and reporting's API. Each check says what it expected and
what it found."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FINAL_STATES = frozenset({"SETTLED", "FAILED", "RETURNED", "PAID_CASH", "CANCELLED"})
PAID_STATES = frozenset({"SETTLED", "PAID_CASH"})
# Our installment state -> what the sandbox may say about the same end-to-end id (None: it
# never took the item, e.g. refused at intake).
# A debit the bank reversed (REVERSED at the sandbox) is money back: RETURNED here once it had
# settled, FAILED when the reversal came before the booking.
AGREEING_STATUS: dict[str, frozenset[str | None]] = {
    "SETTLED": frozenset({"SETTLED"}),
    "PAID_CASH": frozenset({"PAID"}),
    "FAILED": frozenset({"FAILED", "REVERSED", None}),
    "RETURNED": frozenset({"RETURNED", "REVERSED"}),
    "CANCELLED": frozenset({None}),
}
BACK_AT_THE_BANK = frozenset({"RETURNED", "REVERSED"})
# The anomaly payout flags for a person to look at when a settled payment's debit is reversed.
REVERSED_AFTER_SETTLEMENT = "REVERSED_AFTER_SETTLEMENT"
E2E = re.compile(r"^PAY-(\d+)-(\d+)$")


@dataclass(frozen=True, slots=True)
class Installment:
    id: int
    entitlement_id: str
    state: str
    amount: int
    counterparty: str | None
    attempt_no: int
    reason_code: str | None
    reason_text: str | None
    # Whose payment it is: a person is paid once per scheme and period, whatever the entitlements.
    beneficiary_id: str | None = None
    scheme: str | None = None
    period: str | None = None

    @property
    def end_to_end_id(self) -> str | None:
        return f"PAY-{self.id}-{self.attempt_no}" if self.attempt_no else None


@dataclass(frozen=True, slots=True)
class SandboxEntry:
    end_to_end_id: str
    amount: int
    counterparty: str
    status: str
    reason_code: str | None
    credited: bool
    recredit_attempts: int

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> SandboxEntry:
        return cls(
            row["end_to_end_id"],
            int(row["amount"]),
            row["counterparty"],
            row["status"],
            row.get("reason_code"),
            row.get("credited_at") is not None,
            int(row.get("recredit_attempts", 0)),
        )


@dataclass(frozen=True, slots=True)
class ReconciliationLine:
    kind: str
    end_to_end_id: str
    our_state: str | None
    bank_status: str | None


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    counterparty: str
    date: str
    summary: Mapping[str, Any]
    lines_not_matched: Sequence[ReconciliationLine] = ()


@dataclass
class Check:
    name: str
    ok: bool
    expected: Any
    found: Any
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def installment_of(end_to_end_id: str) -> int | None:
    found = E2E.match(end_to_end_id)
    return int(found.group(1)) if found else None


def states(installments: Iterable[Installment]) -> dict[str, int]:
    return dict(sorted(Counter(i.state for i in installments).items()))


def all_final(installments: Sequence[Installment]) -> Check:
    open_ = Counter(i.state for i in installments if i.state not in FINAL_STATES)
    return Check(
        "every installment in a final state",
        not open_,
        0,
        sum(open_.values()),
        {"open": dict(open_)},
    )


def none_lost(installments: Sequence[Installment], entitlements: int) -> Check:
    per_entitlement = Counter(i.entitlement_id for i in installments)
    twice = sum(1 for n in per_entitlement.values() if n > 1)
    ok = len(installments) == entitlements and len(per_entitlement) == entitlements and twice == 0
    return Check(
        "none lost: one installment per entitlement",
        ok,
        entitlements,
        len(installments),
        {"entitlements_with_an_installment": len(per_entitlement), "entitlements_with_two": twice},
    )


def no_duplicates_at_the_bank(ledger: Mapping[str, Any], entries: Sequence[SandboxEntry]) -> Check:
    recredit = sum(e.recredit_attempts for e in entries)
    ok = int(ledger["duplicates"]) == 0 and recredit == 0
    return Check(
        "sandbox ledger: no duplicate payment asked for",
        ok,
        0,
        int(ledger["duplicates"]),
        {"recredit_attempts": recredit},
    )


def no_end_to_end_id_credited_twice(
    ledger: Mapping[str, Any], entries: Sequence[SandboxEntry]
) -> Check:
    ids = Counter(e.end_to_end_id for e in entries)
    repeated = sorted(e2e for e2e, n in ids.items() if n > 1)
    credited = [e for e in entries if e.credited]
    credited_sum = sum(e.amount for e in credited)
    ok = (
        not repeated
        and len(credited) == int(ledger["credits"])
        and credited_sum == int(ledger["total_credited"])
        and len(entries) == int(ledger["transfers"])
    )
    return Check(
        "sandbox ledger: no end-to-end id credited twice",
        ok,
        0,
        len(repeated),
        {
            "entries": len(entries),
            "credited_entries": len(credited),
            "ledger_credits": ledger["credits"],
            "credited_entries_sum": credited_sum,
            "ledger_total_credited": ledger["total_credited"],
            "repeated_ids": repeated[:20],
        },
    )


def no_installment_paid_twice(entries: Sequence[SandboxEntry]) -> Check:
    paid = Counter(installment_of(e.end_to_end_id) for e in entries if e.credited)
    twice = sorted(i for i, n in paid.items() if n > 1 and i is not None)
    foreign = paid.get(None, 0)
    return Check(
        "no installment paid twice (sandbox credits per installment)",
        not twice and not foreign,
        0,
        len(twice),
        {"installments_credited_twice": twice[:20], "credits_with_a_foreign_reference": foreign},
    )


def one_payment_per_person_scheme_and_period(
    installments: Sequence[Installment], entries: Sequence[SandboxEntry]
) -> Check:
    """What the sandbox credited and still holds as paid, by the person, scheme and period of the
    installment each credit names: two credits for one key are a double payment even when they
    belong to two installments (two entitlements of one scheme, a cash fallback beside a transfer
    the bank had); a credit naming no installment of ours cannot be placed and counts against."""
    by_id = {i.id: i for i in installments}
    paid: Counter[tuple[str | None, str | None, str | None]] = Counter()
    unplaced: list[str] = []
    for entry in entries:
        if not (entry.credited and entry.status in ("SETTLED", "PAID")):
            continue
        owner = by_id.get(installment_of(entry.end_to_end_id) or -1)
        if (
            owner is None
            or owner.beneficiary_id is None
            or owner.scheme is None
            or owner.period is None
        ):
            unplaced.append(entry.end_to_end_id)
            continue
        paid[(owner.beneficiary_id, owner.scheme, owner.period)] += 1
    twice = sorted((key for key, n in paid.items() if n > 1), key=str)
    return Check(
        "no person paid twice for one scheme and period (sandbox credits)",
        not twice and not unplaced,
        0,
        len(twice),
        {
            "people_paid": len(paid),
            "paid_twice": [
                {"beneficiary_id": b, "scheme": s, "period": p, "credits": paid[(b, s, p)]}
                for b, s, p in twice[:20]
            ],
            "credits_not_placed": unplaced[:20],
        },
    )


def bank_paid(entries: Sequence[SandboxEntry]) -> tuple[int, int]:
    """(count, sum) of what the sandbox credited and still holds as paid (not sent back)."""
    kept = [e for e in entries if e.credited and e.status in ("SETTLED", "PAID")]
    return len(kept), sum(e.amount for e in kept)


def money_to_the_dong(entries: Sequence[SandboxEntry], payout_ledger: Mapping[str, Any]) -> Check:
    count, total = bank_paid(entries)
    ok = total == int(payout_ledger["settled_sum"]) and count == int(payout_ledger["settled_count"])
    return Check(
        "sandbox total credited == payout ledger settled",
        ok,
        {"sum": total, "count": count},
        {"sum": int(payout_ledger["settled_sum"]), "count": int(payout_ledger["settled_count"])},
    )


def states_agree(installments: Sequence[Installment], entries: Sequence[SandboxEntry]) -> Check:
    """Each installment's final state against what the sandbox says of its current attempt, and
    every credit at the sandbox against an installment our ledger counts as paid."""
    at_bank = {e.end_to_end_id: e for e in entries}
    by_id = {i.id: i for i in installments}
    disagree: list[dict[str, Any]] = []
    for installment in installments:
        e2e = installment.end_to_end_id
        entry = at_bank.get(e2e) if e2e else None
        status = entry.status if entry else None
        allowed = AGREEING_STATUS.get(installment.state, frozenset())
        amount_ok = entry is None or entry.amount == installment.amount
        if status not in allowed or not amount_ok:
            disagree.append(
                {"installment_id": installment.id, "ours": installment.state, "bank": status}
            )
    unaccounted: list[str] = []
    for entry in entries:
        if not entry.credited:
            continue
        owner = by_id.get(installment_of(entry.end_to_end_id) or -1)
        if owner is None or owner.end_to_end_id != entry.end_to_end_id:
            unaccounted.append(entry.end_to_end_id)
        elif owner.state not in PAID_STATES | {"RETURNED"} and not (
            entry.status == "REVERSED" and owner.state == "FAILED"
        ):
            unaccounted.append(entry.end_to_end_id)
    ok = not disagree and not unaccounted
    return Check(
        "each installment's state agrees with the sandbox",
        ok,
        0,
        len(disagree) + len(unaccounted),
        {"disagreeing": disagree[:20], "credits_not_in_our_ledger": unaccounted[:20]},
    )


def failures_explained(
    installments: Sequence[Installment], entries: Sequence[SandboxEntry]
) -> Check:
    at_bank = {e.end_to_end_id: e for e in entries}
    failed = [i for i in installments if i.state in ("FAILED", "RETURNED")]
    unexplained = [i.id for i in failed if not i.reason_code or not i.reason_text]
    differs = [
        i.id
        for i in failed
        if i.end_to_end_id in at_bank
        and at_bank[i.end_to_end_id].reason_code not in (None, i.reason_code)
    ]
    reasons = dict(sorted(Counter(f"{i.state}:{i.reason_code}" for i in failed).items()))
    return Check(
        "failed and returned installments carry the bank's reason",
        not unexplained and not differs,
        0,
        len(unexplained) + len(differs),
        {
            "failed_or_returned": len(failed),
            "by_reason": reasons,
            "without_reason": unexplained[:20],
            "reason_differs_from_bank": differs[:20],
        },
    )


def explained(line: ReconciliationLine) -> bool:
    """A line that is not a match but says what happened: a payment that failed or came back
    and that the statement shows as returned or reversed."""
    return (
        line.kind == "STATUS_DIFFERS"
        and line.our_state in ("FAILED", "RETURNED")
        and line.bank_status in BACK_AT_THE_BANK
    )


def reconciliation_clean(
    runs: Sequence[ReconciliationRun], entries: Sequence[SandboxEntry]
) -> Check:
    kinds: Counter[str] = Counter()
    unexplained: list[dict[str, Any]] = []
    statement_total = 0
    for run in runs:
        for kind, count in run.summary["counts"].items():
            kinds[kind] += int(count)
        statement_total += int(run.summary["statement_total"])
        for line in run.lines_not_matched:
            if not explained(line):
                unexplained.append(
                    {
                        "counterparty": run.counterparty,
                        "date": run.date,
                        "kind": line.kind,
                        "end_to_end_id": line.end_to_end_id,
                        "ours": line.our_state,
                        "bank": line.bank_status,
                    }
                )
    not_matched = sum(n for kind, n in kinds.items() if kind != "MATCHED")
    listed = sum(len(run.lines_not_matched) for run in runs)
    _, paid = bank_paid(entries)
    ok = (
        bool(runs)
        and not unexplained
        and listed == not_matched
        and statement_total == paid
        and all(int(r.summary["difference"]) == 0 for r in runs)
    )
    return Check(
        "reconciliation per counterparty and day clean",
        ok,
        0,
        len(unexplained),
        {
            "runs": len(runs),
            "lines": dict(kinds),
            "explained_lines": listed - len(unexplained),
            "statements_total": statement_total,
            "sandbox_paid": paid,
            "unbalanced_runs": [
                f"{r.counterparty} {r.date}" for r in runs if int(r.summary["difference"])
            ],
            "unexplained": unexplained[:20],
        },
    )


def reporting_equal(
    figures: Mapping[str, Any], payout_ledger: Mapping[str, Any], entries: Sequence[SandboxEntry]
) -> Check:
    """Reporting's paid figures for the period against payout's ledger and the sandbox's, to the
    đồng; its failed and returned figures against payout's ledger."""
    failed_count = sum(int(c["failed_count"]) for c in payout_ledger["counterparties"])
    failed_sum = sum(int(c["failed_sum"]) for c in payout_ledger["counterparties"])
    returned_count = sum(int(c["returned_count"]) for c in payout_ledger["counterparties"])
    returned_sum = sum(int(c["returned_sum"]) for c in payout_ledger["counterparties"])
    ours = {
        "paid_count": int(payout_ledger["settled_count"]),
        "paid_amount": int(payout_ledger["settled_sum"]),
        "failed_count": failed_count,
        "failed_amount": failed_sum,
        "returned_count": returned_count,
        "returned_amount": returned_sum,
        "pending_count": 0,
    }
    theirs = {key: int(figures.get(key, -1)) for key in ours}
    bank_count, bank_sum = bank_paid(entries)
    ok = theirs == ours and (theirs["paid_count"], theirs["paid_amount"]) == (bank_count, bank_sum)
    return Check(
        "reporting's totals == payout ledger == sandbox ledger",
        ok,
        ours,
        theirs,
        {"sandbox_paid": {"count": bank_count, "sum": bank_sum}},
    )


def money_back(
    installments: Sequence[Installment], entries: Sequence[SandboxEntry]
) -> list[SandboxEntry]:
    """What the sandbox sent back (returned, or a debit reversed) on an installment's current
    attempt, except a debit reversed before it settled here (a failure: nothing moved)."""
    current = {i.end_to_end_id: i for i in installments if i.end_to_end_id}
    return [
        e
        for e in entries
        if e.status in BACK_AT_THE_BANK
        and e.end_to_end_id in current
        and not (e.status == "REVERSED" and current[e.end_to_end_id].state == "FAILED")
    ]


def money_back_to_the_dong(
    installments: Sequence[Installment],
    entries: Sequence[SandboxEntry],
    payout_ledger: Mapping[str, Any],
    figures: Mapping[str, Any],
) -> Check:
    """Returns and reversals: what the sandbox sent back == payout's returned == reporting's
    returned, in count and to the đồng."""
    back = money_back(installments, entries)
    bank = {"count": len(back), "sum": sum(e.amount for e in back)}
    ours = {
        "count": sum(int(c["returned_count"]) for c in payout_ledger["counterparties"]),
        "sum": sum(int(c["returned_sum"]) for c in payout_ledger["counterparties"]),
    }
    theirs = {
        "count": int(figures.get("returned_count", -1)),
        "sum": int(figures.get("returned_amount", -1)),
    }
    kinds = Counter(e.status for e in back)
    return Check(
        "money back (returns, reversals): sandbox == payout ledger == reporting",
        bank == ours == theirs,
        bank,
        ours,
        {"sandbox": bank, "payout": ours, "reporting": theirs, "by_kind": dict(kinds)},
    )


def sandbox_ledger_nets(ledger: Mapping[str, Any], entries: Sequence[SandboxEntry]) -> Check:
    """The sandbox's own ledger says what came back: its returned and reversed totals are its
    entries', and what it says beneficiaries still hold is what its entries keep."""
    returned = [
        e for e in entries if e.status == "RETURNED" and e.credited and e.counterparty != "VNPOST"
    ]
    reversed_ = [e for e in entries if e.status == "REVERSED"]
    _, kept = bank_paid(entries)
    found = {
        "net_credited": int(ledger.get("net_credited", -1)),
        "total_returned": int(ledger.get("total_returned", -1)),
        "total_reversed": int(ledger.get("total_reversed", -1)),
    }
    expected = {
        "net_credited": kept,
        "total_returned": sum(e.amount for e in returned),
        "total_reversed": sum(e.amount for e in reversed_),
    }
    return Check(
        "sandbox ledger nets its returns and reversals",
        found == expected,
        expected,
        found,
        {"returned": len(returned), "reversed": len(reversed_)},
    )


def expected_anomalies(
    installments: Sequence[Installment], entries: Sequence[SandboxEntry]
) -> dict[str, int]:
    """The anomalies a run must flag: one per settled payment whose debit the bank reversed."""
    current = {i.end_to_end_id: i for i in installments if i.end_to_end_id}
    reversed_after = sum(
        1
        for e in entries
        if e.status == "REVERSED"
        and e.end_to_end_id in current
        and current[e.end_to_end_id].state == "RETURNED"
    )
    return {REVERSED_AFTER_SETTLEMENT: reversed_after} if reversed_after else {}


def no_anomalies(anomalies: Mapping[str, int], expected: Mapping[str, int] | None = None) -> Check:
    """No payment anomaly flagged but the expected ones (a reversal after settlement), exactly."""
    found = {kind: n for kind, n in anomalies.items() if n}
    wanted = {kind: n for kind, n in (expected or {}).items() if n}
    return Check(
        "no payment anomaly flagged but one per reversal after settlement",
        found == wanted,
        wanted,
        found,
        {"by_kind": dict(anomalies)},
    )


def events_applied(pending: int, missing: Sequence[str], payment_events: int) -> Check:
    """Every payment event in payout's outbox published and applied by reporting (by event id)."""
    ok = pending == 0 and not missing
    return Check(
        "every payment event published and applied by reporting",
        ok,
        {"outbox_pending": 0, "missing_in_reporting": 0},
        {"outbox_pending": pending, "missing_in_reporting": len(missing)},
        {"payment_events": payment_events, "missing": list(missing[:20])},
    )


def no_dead_letters(dead: Sequence[Mapping[str, str]]) -> Check:
    """A valid event put in a dead-letter topic is an event its consumer never applies."""
    reasons = Counter(f"{d.get('consumer')}:{d.get('reason')}" for d in dead)
    return Check(
        "no event dead-lettered by a consumer",
        not dead,
        0,
        len(dead),
        {"by_consumer_and_reason": dict(reasons), "first": [dict(d) for d in dead[:10]]},
    )


def disruptions_done(requested: Mapping[str, int], done: Mapping[str, int]) -> Check:
    return Check(
        "kills and restarts done as asked",
        dict(requested) == dict(done),
        dict(requested),
        dict(done),
    )
