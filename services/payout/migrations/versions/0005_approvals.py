"""No money moves without a second officer's approval: batches are made per agency in a PREPARED
state submission never claims; approvals per period and agency; funds envelopes; the payment
calendar.

Revision ID: payout_0005
Revises: payout_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "payout_0005"
down_revision = "payout_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cycle_approvals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("cycle_id", sa.BigInteger(), sa.ForeignKey("cycles.id"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("decided_by_name", sa.String(200), nullable=True),
        sa.Column("prepared_by", sa.String(500), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_cycle_approvals_period_agency", "cycle_approvals", ["period", "agency", "id"]
    )

    with op.batch_alter_table("cycles") as batch:
        batch.add_column(sa.Column("prepared_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("pay_date", sa.Date(), nullable=True))
    op.execute("UPDATE cycles SET prepared_by = started_by")

    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("agency", sa.String(16), nullable=True))
        batch.add_column(sa.Column("prepared_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("approval_id", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("withdrawn_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("withdrawn_sum", sa.BigInteger(), nullable=False, server_default="0")
        )
    # Batches made before were sent without an approval; their agency is their installments'.
    op.execute(
        "UPDATE batches SET agency = (SELECT MIN(i.agency) FROM payment_attempts a "
        "JOIN installments i ON i.id = a.installment_id WHERE a.batch_id = batches.batch_id)"
    )
    op.execute("UPDATE batches SET agency = '' WHERE agency IS NULL")
    op.execute(
        "UPDATE batches SET prepared_by = (SELECT c.started_by FROM cycles c "
        "WHERE c.id = batches.cycle_id)"
    )
    with op.batch_alter_table("batches") as batch:
        batch.alter_column("agency", existing_type=sa.String(16), nullable=False)
        batch.alter_column("prepared_by", existing_type=sa.String(100), nullable=False)
    op.create_index("ix_batches_cycle_agency_state", "batches", ["cycle_id", "agency", "state"])
    op.create_index("ix_batches_approval", "batches", ["approval_id"])

    op.create_table(
        "envelopes",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(100), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "agency", "scheme", name="pk_envelopes"),
    )

    op.create_table(
        "payment_calendar",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("pay_date", sa.Date(), nullable=False),
        sa.Column("prepare_on", sa.Date(), nullable=False),
        sa.Column("set_by", sa.String(100), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_payment_calendar_prepare_on", "payment_calendar", ["prepare_on"])


def downgrade() -> None:
    op.drop_index("ix_payment_calendar_prepare_on", table_name="payment_calendar")
    op.drop_table("payment_calendar")
    op.drop_table("envelopes")
    op.drop_index("ix_batches_approval", table_name="batches")
    op.drop_index("ix_batches_cycle_agency_state", table_name="batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("withdrawn_sum")
        batch.drop_column("withdrawn_count")
        batch.drop_column("approval_id")
        batch.drop_column("prepared_by")
        batch.drop_column("agency")
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("pay_date")
        batch.drop_column("prepared_by")
    op.drop_index("ix_cycle_approvals_period_agency", table_name="cycle_approvals")
    op.drop_table("cycle_approvals")
