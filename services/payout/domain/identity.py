"""Identity revalidation as payout applies it: intake names the people who must not be paid in
a period, and their installments wait with a reason no payment method can lift."""

from __future__ import annotations

HOLDER_DECEASED = "HOLDER_DECEASED"
IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
IDENTITY_NOT_FOUND = "IDENTITY_NOT_FOUND"

# intake's outcome -> the installment's hold reason
HOLD_REASON_OF = {
    "DECEASED": HOLDER_DECEASED,
    "IDENTITY_MISMATCH": IDENTITY_MISMATCH,
    "NOT_FOUND": IDENTITY_NOT_FOUND,
}
IDENTITY_HOLD_REASONS = frozenset(HOLD_REASON_OF.values())


def hold_reason(outcome: str) -> str:
    return HOLD_REASON_OF[outcome]
