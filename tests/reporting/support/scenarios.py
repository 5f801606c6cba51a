"""A deterministic history of claims and payments with what it must add up to, computed apart
from the projection code (by intent: how each installment ends)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from shared.events.contracts import Contract
from tests.reporting.support import events as ev
from tests.reporting.support.events import (
    RURAL_COMMUNE,
    RURAL_OTHER_DISTRICT,
    TOWNSHIP,
    URBAN_COMMUNE,
)

COMMUNES = {
    URBAN_COMMUNE: ("URBAN", "243"),
    RURAL_COMMUNE: ("RURAL", "243"),
    RURAL_OTHER_DISTRICT: ("RURAL", "246"),
    TOWNSHIP: ("URBAN", "246"),
}
SCHEMES = [
    ("PENSION", "BHXH"),
    ("SI_ALLOWANCE", "BHXH"),
    ("MERITORIOUS", "DOLISA"),
    ("SOCIAL_PROTECTION", "DOLISA"),
]
PERIODS = ["2023-04", "2023-05", "2023-06"]
CASHLESS = ("OWN_ACCOUNT", "AUTHORISED_ACCOUNT")


@dataclass
class Expected:
    """Totals by intent: people per (period, channel, area type, district, scheme) and money."""

    people: Counter = field(default_factory=Counter)
    paid_amount: Counter = field(default_factory=Counter)
    paid_count: Counter = field(default_factory=Counter)
    returned_amount: int = 0
    claims_received: int = 0
    approved: int = 0
    rejected: int = 0

    def people_where(self, **where: str) -> int:
        return sum(
            n for key, n in self.people.items() if all(dict(key)[k] == v for k, v in where.items())
        )

    def amount_where(self, **where: str) -> int:
        return sum(
            n
            for key, n in self.paid_amount.items()
            if all(dict(key)[k] == v for k, v in where.items())
        )


def mixed_history(
    beneficiaries: int = 48, seed: int = 7, prefix: str = ""
) -> tuple[list[Contract], Expected]:
    rng = random.Random(seed)
    expected = Expected()
    streams: list[list[Contract]] = []
    best: dict[
        tuple, tuple
    ] = {}  # (period, beneficiary, scheme) -> (cashless?, channel, commune, scheme)
    minute = 0
    for b in range(beneficiaries):
        beneficiary = f"{prefix}b{b:04d}"
        commune = list(COMMUNES)[b % len(COMMUNES)]
        scheme, agency = SCHEMES[(b // 2) % len(SCHEMES)]
        for p, period in enumerate(PERIODS):
            minute += 1
            iid = f"{prefix}i-{b:04d}-{period}"
            amount = 1_500_000 + 250_000 * (b % 9) + 1  # odd đồng amounts catch any rounding
            cash_person = b % 7 == 0 and period != "2023-06"  # moves to a bank account in June
            channel = "CASH_POST_OFFICE" if cash_person else CASHLESS[b % 3 == 0]
            f = ev.facts(
                iid,
                beneficiary,
                period,
                amount,
                scheme=scheme,
                agency=agency,
                channel=channel,
                commune=commune,
            )
            t = ev.at(minute * 10)
            stream: list[Contract] = [ev.scheduled(f, t)]
            outcome = "settled"
            if cash_person:
                stream.append(ev.paid_cash(f, t + timedelta(minutes=3)))
                outcome = "cash"
            elif b % 5 == 0 and period == "2023-05":
                stream += [
                    ev.submitted(f, t + timedelta(minutes=1)),
                    ev.settled(f, t + timedelta(minutes=2)),
                    ev.returned(f, t + timedelta(minutes=4)),
                ]
                outcome = "returned"
            elif b % 11 == 0:
                cash = ev.facts(
                    iid,
                    beneficiary,
                    period,
                    amount,
                    scheme=scheme,
                    agency=agency,
                    channel="CASH_POST_OFFICE",
                    commune=commune,
                )
                stream += [
                    ev.submitted(f, t + timedelta(minutes=1)),
                    ev.failed(f, True, t + timedelta(minutes=2)),
                    ev.paid_cash(cash, t + timedelta(minutes=5)),
                ]
                outcome, channel = "cash", "CASH_POST_OFFICE"
            else:
                stream += [
                    ev.submitted(f, t + timedelta(minutes=1)),
                    ev.failed(f, False, t + timedelta(minutes=2)),
                    ev.submitted(f, t + timedelta(minutes=3)),
                    ev.settled(f, t + timedelta(minutes=4)),
                ]
                if p == 1:  # a stale duplicate arrives after the settlement
                    stream.append(ev.submitted(f, t + timedelta(minutes=1)))
            streams.append(stream)
            kind, district = COMMUNES[commune]
            if outcome == "returned":
                expected.returned_amount += amount
                continue
            dims = (
                ("period", period),
                ("channel", channel),
                ("area_type", kind),
                ("district", district),
                ("scheme", scheme),
            )
            expected.paid_amount[dims] += amount
            expected.paid_count[dims] += 1
            key = (period, beneficiary, scheme)
            candidate = (channel in CASHLESS, dims)
            if key not in best or candidate[0] > best[key][0]:
                best[key] = candidate
        if b % 13 == 0:  # arrears: a second, cash installment in May for the same person and scheme
            iid = f"{prefix}i-{b:04d}-2023-05-arrears"
            f = ev.facts(
                iid,
                beneficiary,
                "2023-05",
                700_000,
                scheme=scheme,
                agency=agency,
                channel="CASH_POST_OFFICE",
                commune=commune,
            )
            minute += 1
            streams.append(
                [ev.scheduled(f, ev.at(minute * 10)), ev.paid_cash(f, ev.at(minute * 10 + 3))]
            )
            kind, district = COMMUNES[commune]
            dims = (
                ("period", "2023-05"),
                ("channel", "CASH_POST_OFFICE"),
                ("area_type", kind),
                ("district", district),
                ("scheme", scheme),
            )
            expected.paid_amount[dims] += 700_000
            expected.paid_count[dims] += 1
            key = ("2023-05", beneficiary, scheme)
            if key not in best:
                best[key] = (False, dims)
    for _, dims in best.values():
        expected.people[dims] += 1
    for c in range(24):
        claim = f"{prefix}c{c:04d}"
        received_at = ev.at(60 * 24 * c)
        stream = [ev.claim_received(claim, received_at, commune=list(COMMUNES)[c % 4])]
        expected.claims_received += 1
        if c % 8 != 7:
            outcome = "REJECTED" if c % 6 == 5 else "APPROVED"
            stream.append(
                ev.claim_decided(
                    claim,
                    received_at + timedelta(days=15),
                    outcome,
                    commune=list(COMMUNES)[c % 4],
                    amount=4_500_000,
                )
            )
            if outcome == "APPROVED":
                expected.approved += 1
            else:
                expected.rejected += 1
        streams.append(stream)
    return interleave(streams, rng), expected


def interleave(streams: list[list[Contract]], rng: random.Random) -> list[Contract]:
    """A random merge that keeps each stream's own order (as per-key partitions do)."""
    cursors = defaultdict(int)
    pending = [i for i, s in enumerate(streams) if s]
    out: list[Contract] = []
    while pending:
        i = rng.choice(pending)
        out.append(streams[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(streams[i]):
            pending.remove(i)
    return out
