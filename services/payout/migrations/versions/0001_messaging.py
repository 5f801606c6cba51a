"""Outbox, outbox lanes and inbox.

Revision ID: payout_0001
Revises:
"""

from alembic import op

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision = "payout_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
