"""Identity revalidation before payment: whether intake has revalidated a period's
beneficiaries, and the holds it found applied to the cycle's installments.

A placeholder until the revalidation consumer records intake's answers: every period counts as
revalidated and nothing is held.
"""

from __future__ import annotations

from shared.uow import UnitOfWork


async def revalidation_done(uow: UnitOfWork, period: str) -> bool:
    """Whether intake has revalidated every beneficiary of `period`."""
    return True


async def apply_identity_holds(uow: UnitOfWork, cycle_id: int, period: str) -> int:
    """Hold the cycle's installments of people intake found deceased, mismatched or unknown;
    how many were held."""
    return 0
