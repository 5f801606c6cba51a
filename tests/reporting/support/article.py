"""The event stream behind the article's unemployment figures (Vĩnh Phúc, 10 May 2023):

- 2022: over 11,000 applications, 10,584 benefit decisions, over 212.7 billion VND paid by BHXH,
  vocational-training support included;
- Q1 2023: 2,203 applications, 1,533 decisions, over 31.7 billion VND, all to personal accounts;
- since early 2023: 144 overseas-labour support files paid without cash, over 1.7 billion VND.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.admin_units import LIST_2023, units
from shared.events.contracts import Contract
from tests.reporting.support import events as ev

RECEIVED_2022 = 11_042
APPROVED_2022 = 10_584
REJECTED_2022 = 118
PAID_2022 = 212_734_560_000
TRAINING_2022 = (620, 4_500_000)  # people, VND each

RECEIVED_Q1_2023 = 2_203
APPROVED_Q1_2023 = 1_533
PAID_Q1_2023 = 31_726_400_000
TRAINING_Q1_2023 = (80, 4_500_000)

OVERSEAS_2023 = 144
OVERSEAS_PAID = 1_728_000_000


@dataclass(frozen=True)
class Article:
    events: list[Contract]


def _spread(total: int, count: int) -> list[int]:
    """`count` whole-đồng amounts adding up to `total` exactly."""
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def _at(day0: datetime, days: float) -> datetime:
    return day0 + timedelta(days=days)


def _stream(
    year_tag: str,
    start: datetime,
    span_days: float,
    received: int,
    approved: int,
    rejected: int,
    paid_total: int,
    training: tuple[int, int],
) -> list[Contract]:
    communes = [u.code for u in units(LIST_2023)]
    out: list[Contract] = []
    training_people, training_amount = training
    unemployment_total = paid_total - training_people * training_amount
    amounts = _spread(unemployment_total, approved)
    for k in range(received):
        claim = f"{year_tag}-{k:05d}"
        commune = communes[k % len(communes)]
        received_at = _at(start, span_days * k / received)
        out.append(ev.claim_received(claim, received_at, commune=commune))
        decided_at = received_at + timedelta(days=15)
        if k < approved:
            out.append(
                ev.claim_decided(
                    claim, decided_at, "APPROVED", commune=commune, agency="ESC", amount=amounts[k]
                )
            )
            f = ev.facts(
                f"{claim}-1",
                f"ben-{claim}",
                f"{decided_at.year}-{decided_at.month:02d}",
                amounts[k],
                scheme="UNEMPLOYMENT",
                agency="BHXH",
                channel="OWN_ACCOUNT",
                commune=commune,
            )
            out.append(ev.settled(f, decided_at + timedelta(hours=6)))
            if k < training_people:
                t = ev.facts(
                    f"{claim}-vt",
                    f"ben-{claim}",
                    f"{decided_at.year}-{decided_at.month:02d}",
                    training_amount,
                    scheme="VOCATIONAL_TRAINING",
                    agency="BHXH",
                    channel="OWN_ACCOUNT",
                    commune=commune,
                )
                out.append(ev.settled(t, decided_at + timedelta(hours=7)))
        elif k < approved + rejected:
            out.append(
                ev.claim_decided(claim, decided_at, "REJECTED", commune=commune, agency="ESC")
            )
    return out


def article_stream() -> Article:
    events: list[Contract] = []
    # 2022: received 1 Jan - 26 Nov, decided 15 days later, paid in the decision's month.
    events += _stream(
        "2022",
        datetime(2022, 1, 1, 3, tzinfo=UTC),
        330,
        RECEIVED_2022,
        APPROVED_2022,
        REJECTED_2022,
        PAID_2022,
        TRAINING_2022,
    )
    # Q1 2023: received 1 Jan - 31 Mar; the first 1,533 are decided (by 18 March) and paid.
    events += _stream(
        "2023",
        datetime(2023, 1, 1, 3, tzinfo=UTC),
        89.5,
        RECEIVED_Q1_2023,
        APPROVED_Q1_2023,
        0,
        PAID_Q1_2023,
        TRAINING_Q1_2023,
    )
    # Overseas-labour support, Resolution 07: one-off payments by the Employment Service Centre.
    communes = [u.code for u in units(LIST_2023)]
    for k, amount in enumerate(_spread(OVERSEAS_PAID, OVERSEAS_2023)):
        paid_at = _at(datetime(2023, 1, 9, 3, tzinfo=UTC), 100 * k / OVERSEAS_2023)
        f = ev.facts(
            f"ol-{k:04d}",
            f"ol-ben-{k:04d}",
            f"{paid_at.year}-{paid_at.month:02d}",
            amount,
            scheme="OVERSEAS_LABOUR",
            agency="ESC",
            channel="OWN_ACCOUNT",
            commune=communes[(k * 7) % 136],
        )
        events.append(ev.settled(f, paid_at))
    return Article(events)
