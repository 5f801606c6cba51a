"""What the handlers share: the PaymentFacts of an installment row (their home is
`domain/facts.py`). Time, dialects and upserts come from the kernel (`shared.clock`,
`shared.db`, `UnitOfWork.insert`)."""

from __future__ import annotations

from services.payout.domain.facts import FACT_FIELDS, facts, facts_json

__all__ = ["FACT_FIELDS", "facts", "facts_json"]
