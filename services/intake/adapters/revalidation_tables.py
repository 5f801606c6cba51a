"""Intake's tables of identity revalidation before a period is paid: the requests (one per
period, from payout's `CycleOpened`), the registry's outcome per period and beneficiary, and the
stop proposals made to an agency for the entitlements of a holder recorded as deceased. They
belong to intake's one metadata (`orm.py` imports this module)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from services.intake.adapters.orm import Uuid, metadata

# One pass over everyone intake pays in the period. PENDING until its last part is emitted, then
# DONE. `after_beneficiary` is the pass's cursor (beneficiaries in id order): a chunk's results
# are written with the cursor's move, so a pass that stops anywhere resumes where it was.
revalidation_requests = Table(
    "revalidation_requests",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("state", String(10), nullable=False),  # PENDING or DONE
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),  # the cycle's, as announced
    Column("after_beneficiary", Uuid, nullable=True),
    Column("checked", Integer, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("parts", Integer, nullable=True),  # RevalidationCompleted parts emitted
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Index("ix_revalidation_requests_state", "state", "requested_at"),
)

# CONFIRMED, DECEASED, IDENTITY_MISMATCH or NOT_FOUND. The date of death only for DECEASED.
revalidation_results = Table(
    "revalidation_results",
    metadata,
    Column("period", String(7), nullable=False),
    Column("beneficiary_id", Uuid, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("date_of_death", Date, nullable=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("period", "beneficiary_id", name="pk_revalidation_results"),
    Index("ix_revalidation_results_period_outcome", "period", "outcome", "beneficiary_id"),
)

# A proposal to stop an open entitlement, made once per entitlement and reason: OPEN until the
# agency stops the entitlement (CONFIRMED) or dismisses it (DISMISSED).
stop_proposals = Table(
    "stop_proposals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("entitlement_id", Uuid, ForeignKey("entitlements.id"), nullable=False),
    Column("beneficiary_id", Uuid, nullable=False),
    Column("agency", String(10), nullable=False),
    Column("reason", String(20), nullable=False),  # DECEASED
    Column("date_of_death", Date, nullable=True),
    Column("period", String(7), nullable=False),  # the revalidation that found it
    Column("state", String(10), nullable=False),  # OPEN, CONFIRMED or DISMISSED
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("entitlement_id", "reason", name="uq_stop_proposals_entitlement_reason"),
    Index("ix_stop_proposals_agency_state", "agency", "state", "created_at", "id"),
)
