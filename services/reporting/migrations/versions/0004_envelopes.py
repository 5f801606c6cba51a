"""Funds envelopes: the latest budget per period, agency and scheme, and each approval's totals.

Revision ID: reporting_0004
Revises: reporting_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "reporting_0004"
down_revision = "reporting_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "envelope_budgets",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("agency", sa.String(16), primary_key=True),
        sa.Column("scheme", sa.String(32), primary_key=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "envelope_approvals",
        sa.Column("approval_id", sa.String(64), primary_key=True),
        sa.Column("scheme", sa.String(32), primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("envelope", sa.BigInteger, nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_envelope_approvals_period", "envelope_approvals", ["period", "agency", "scheme"]
    )


def downgrade() -> None:
    op.drop_index("ix_envelope_approvals_period", table_name="envelope_approvals")
    op.drop_table("envelope_approvals")
    op.drop_table("envelope_budgets")
