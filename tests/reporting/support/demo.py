"""A province-like history for the dashboard: people in every commune of the 2023 list, cashless
payment spreading month by month, faster in towns than in the countryside."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from shared.admin_units import LIST_2023, units
from shared.events.contracts import Contract, PaymentFacts
from tests.reporting.support import events as ev

PERIODS = ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05", "2023-06"]
SCHEMES = [
    ("PENSION", "BHXH", 4_850_000, 45),
    ("SI_ALLOWANCE", "BHXH", 2_320_000, 15),
    ("MERITORIOUS", "DOLISA", 2_789_000, 15),
    ("SOCIAL_PROTECTION", "DOLISA", 540_000, 20),
    ("UNEMPLOYMENT", "BHXH", 5_460_000, 5),
]


def dashboard_history(people: int = 700, seed: int = 2023) -> list[Contract]:
    rng = random.Random(seed)
    communes = units(LIST_2023)
    weights = [s[3] for s in SCHEMES]
    out: list[Contract] = []
    for n in range(people):
        unit = communes[n % len(communes)]
        scheme, agency, base, _ = rng.choices(SCHEMES, weights)[0]
        # The month the person moves to a bank account (never, for some).
        adopt = rng.random() * (14 if unit.urban else 30)
        authorised = rng.random() < 0.3
        amount = base + rng.randrange(0, 400) * 1_000
        for m, period in enumerate(PERIODS):
            cashless = m >= adopt
            channel = (
                ("AUTHORISED_ACCOUNT" if authorised else "OWN_ACCOUNT")
                if cashless
                else "CASH_POST_OFFICE"
            )
            f = ev.facts(
                f"d-{n:05d}-{period}",
                f"d-{n:05d}",
                period,
                amount,
                scheme=scheme,
                agency=agency,
                channel=channel,
                commune=unit.code,
                list_date=LIST_2023,
            )
            when = datetime(2023, m + 1, 10, 2, tzinfo=UTC) + timedelta(minutes=n)
            out.append(ev.settled(f, when) if cashless else ev.paid_cash(f, when))
    for c in range(240):
        received = datetime(2023, 1, 2, 2, tzinfo=UTC) + timedelta(hours=16 * c)
        commune = communes[(c * 5) % len(communes)].code
        out.append(ev.claim_received(f"dc-{c:04d}", received, commune=commune))
        if c % 5 != 4:
            out.append(
                ev.claim_decided(
                    f"dc-{c:04d}",
                    received + timedelta(days=12),
                    "REJECTED" if c % 9 == 8 else "APPROVED",
                    commune=commune,
                )
            )
    return out + envelope_history(out)


def envelope_history(payments: list[Contract]) -> list[Contract]:
    """Each agency's envelopes and one approval per agency and period of exactly what it paid. In
    the last period BHXH's pension envelope is lowered below what was approved (over), DOLISA's
    meritorious allowance has not been approved yet, and ESC has an envelope with nothing against it."""
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for payment in payments:
        if isinstance(payment, PaymentFacts):
            line = totals[(payment.period, payment.agency, payment.scheme)]
            line[0] += 1
            line[1] += payment.amount
    out: list[Contract] = []
    last = PERIODS[-1]
    for m, period in enumerate(PERIODS):
        loaded = datetime(2023, m + 1, 1, 2, tzinfo=UTC)
        approved = datetime(2023, m + 1, 8, 2, tzinfo=UTC)
        for (p, agency, scheme), (_, amount) in sorted(totals.items()):
            if p == period:
                envelope = (
                    -(-amount * 110 // 100 // 1_000_000) * 1_000_000
                )  # 10% over, whole millions
                out.append(ev.envelope_set(period, agency, scheme, envelope, loaded))
        if period == last:
            out.append(ev.envelope_set(period, "ESC", "OVERSEAS_LABOUR", 150_000_000, loaded))
        for agency in ("BHXH", "DOLISA"):
            lines = {
                scheme: (count, amount)
                for (p, a, scheme), (count, amount) in sorted(totals.items())
                if p == period and a == agency and not (period == last and scheme == "MERITORIOUS")
            }
            out.append(
                ev.cycle_approved(period, agency, f"appr-{period}-{agency}", lines, approved)
            )
        if period == last:
            pension = totals[(period, "BHXH", "PENSION")][1]
            lowered = datetime(2023, m + 1, 20, 2, tzinfo=UTC)
            out.append(ev.envelope_set(period, "BHXH", "PENSION", pension - 50_000_000, lowered))
    return out
