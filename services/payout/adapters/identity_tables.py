"""Payout's record of intake's identity revalidation (`RevalidationCompleted`): the parts
received per period and who must not be paid in it. In payout's one metadata (`orm.py` imports
this module)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, PrimaryKeyConstraint, String, Table

from services.payout.adapters.orm import UtcTime, metadata

# One row per part of a period's answer; `last` on the part that ends it.
revalidation_parts = Table(
    "revalidation_parts",
    metadata,
    Column("period", String(7), nullable=False),
    Column("part", Integer, nullable=False),
    Column("last", Boolean, nullable=False),
    Column("checked", Integer, nullable=False),
    Column("holds", Integer, nullable=False),
    Column("completed_at", UtcTime, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    PrimaryKeyConstraint("period", "part", name="pk_revalidation_parts"),
)

# A person intake found DECEASED, IDENTITY_MISMATCH or NOT_FOUND for a period.
identity_holds = Table(
    "identity_holds",
    metadata,
    Column("period", String(7), nullable=False),
    Column("beneficiary_id", String(64), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("received_at", UtcTime, nullable=False),
    PrimaryKeyConstraint("period", "beneficiary_id", name="pk_identity_holds"),
)
