"""Identity revalidation before a period is paid: requests per period, the population
registry's outcome per period and beneficiary, and stop proposals for deceased holders.

Revision ID: intake_0005
Revises: intake_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0005"
down_revision = "intake_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revalidation_requests",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("after_beneficiary", sa.String(36), nullable=True),
        sa.Column("checked", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parts", sa.Integer, nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_revalidation_requests_state", "revalidation_requests", ["state", "requested_at"]
    )
    op.create_table(
        "revalidation_results",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("beneficiary_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("date_of_death", sa.Date, nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "beneficiary_id", name="pk_revalidation_results"),
    )
    op.create_index(
        "ix_revalidation_results_period_outcome",
        "revalidation_results",
        ["period", "outcome", "beneficiary_id"],
    )
    op.create_table(
        "stop_proposals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "entitlement_id", sa.String(36), sa.ForeignKey("entitlements.id"), nullable=False
        ),
        sa.Column("beneficiary_id", sa.String(36), nullable=False),
        sa.Column("agency", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("date_of_death", sa.Date, nullable=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "entitlement_id", "reason", name="uq_stop_proposals_entitlement_reason"
        ),
    )
    op.create_index(
        "ix_stop_proposals_agency_state",
        "stop_proposals",
        ["agency", "state", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_stop_proposals_agency_state", "stop_proposals")
    op.drop_table("stop_proposals")
    op.drop_index("ix_revalidation_results_period_outcome", "revalidation_results")
    op.drop_table("revalidation_results")
    op.drop_index("ix_revalidation_requests_state", "revalidation_requests")
    op.drop_table("revalidation_requests")
