"""Intake's identity revalidation as payout keeps it: the parts received per period and the
people who must not be paid in it (deceased, identity mismatch, not found).

Revision ID: payout_0006
Revises: payout_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "payout_0006"
down_revision = "payout_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revalidation_parts",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("last", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("holds", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "part", name="pk_revalidation_parts"),
    )
    op.create_table(
        "identity_holds",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("beneficiary_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "beneficiary_id", name="pk_identity_holds"),
    )


def downgrade() -> None:
    op.drop_table("identity_holds")
    op.drop_table("revalidation_parts")
