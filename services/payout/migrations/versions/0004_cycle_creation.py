"""A cycle is created in chunks: when its creation finished (the scheduler finishes one that
stopped halfway).

Revision ID: payout_0004
Revises: payout_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "payout_0004"
down_revision = "payout_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cycles") as batch:
        batch.add_column(sa.Column("creation_finished_at", sa.DateTime(timezone=True)))
    # Cycles made before were created in one transaction: finished when they started.
    op.execute("UPDATE cycles SET creation_finished_at = started_at")


def downgrade() -> None:
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("creation_finished_at")
