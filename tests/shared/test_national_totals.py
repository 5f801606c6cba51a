"""A period's totals and budgets reach national size (some twenty trillion đồng a month for the
country's pensions), far above one benefit's bound: the contracts and the envelope API take them,
and still refuse what no BIGINT-backed total should hold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.payout.api.schemas import EnvelopeRow
from shared.events.contracts import MAX_VND, MAX_VND_TOTAL, SchemeTotal

NATIONAL_MONTH = 20 * 10**12


def test_a_scheme_total_and_its_envelope_may_exceed_one_benefits_bound():
    total = SchemeTotal(
        scheme="PENSION", count=3_300_000, amount=NATIONAL_MONTH, envelope=NATIONAL_MONTH
    )
    assert total.amount > MAX_VND
    assert EnvelopeRow(period="2023-01", agency="BHXH", scheme="PENSION", amount=NATIONAL_MONTH)


def test_a_total_beyond_its_bound_is_refused():
    with pytest.raises(ValidationError):
        SchemeTotal(scheme="PENSION", count=1, amount=MAX_VND_TOTAL + 1)
    with pytest.raises(ValidationError):
        EnvelopeRow(period="2023-01", agency="BHXH", scheme="PENSION", amount=MAX_VND_TOTAL + 1)
