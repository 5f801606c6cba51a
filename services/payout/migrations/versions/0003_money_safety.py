"""Money-safety guards: ownership, one active entitlement per person and scheme, contract-wide
columns, fenced leases and exact reconciliation.

Revision ID: payout_0003
Revises: payout_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "payout_0003"
down_revision = "payout_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- contract-wide columns: every field intake's events carry fits where payout keeps it
    with op.batch_alter_table("entitlements") as batch:
        batch.alter_column(
            "decision_number",
            existing_type=sa.String(64),
            type_=sa.String(100),
            existing_nullable=False,
        )
    with op.batch_alter_table("payment_methods") as batch:
        batch.alter_column(
            "cash_reason",
            existing_type=sa.String(200),
            type_=sa.String(500),
            existing_nullable=True,
        )
    # --- end of contract-wide columns

    # --- fenced batch leases: each claim takes the next token; a write carrying an older one is void
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0"))
    # --- end of fenced batch leases

    # --- one installment per person, scheme and period; duplicate entitlements as anomalies
    _refuse_duplicate_installments()
    op.create_index(
        "uq_installments_person_scheme_period",
        "installments",
        ["beneficiary_id", "scheme", "period"],
        unique=True,
        postgresql_where=sa.text(_PAYABLE),
        sqlite_where=sa.text(_PAYABLE),
    )
    with op.batch_alter_table("payment_anomalies") as batch:
        batch.alter_column("counterparty", existing_type=sa.String(8), nullable=True)
        batch.alter_column("end_to_end_id", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("paid_by_entitlement_id", sa.String(64), nullable=True))
    op.create_index("ix_payment_anomalies_kind", "payment_anomalies", ["kind", "id"])
    # --- end of one installment per person, scheme and period


def downgrade() -> None:
    # --- one installment per person, scheme and period
    op.drop_index("ix_payment_anomalies_kind", table_name="payment_anomalies")
    op.execute(
        "UPDATE payment_anomalies SET counterparty = COALESCE(counterparty, ''), "
        "end_to_end_id = COALESCE(end_to_end_id, '') WHERE counterparty IS NULL OR end_to_end_id IS NULL"
    )
    with op.batch_alter_table("payment_anomalies") as batch:
        batch.drop_column("paid_by_entitlement_id")
        batch.alter_column("end_to_end_id", existing_type=sa.String(64), nullable=False)
        batch.alter_column("counterparty", existing_type=sa.String(8), nullable=False)
    op.drop_index("uq_installments_person_scheme_period", table_name="installments")
    # --- end of one installment per person, scheme and period

    # --- fenced batch leases
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("lease_token")
    # --- end of fenced batch leases

    # --- contract-wide columns
    with op.batch_alter_table("payment_methods") as batch:
        batch.alter_column(
            "cash_reason",
            existing_type=sa.String(500),
            type_=sa.String(200),
            existing_nullable=True,
        )
    with op.batch_alter_table("entitlements") as batch:
        batch.alter_column(
            "decision_number",
            existing_type=sa.String(100),
            type_=sa.String(64),
            existing_nullable=False,
        )
    # --- end of contract-wide columns


_PAYABLE = (
    "state <> 'CANCELLED' AND (hold_reason IS NULL OR hold_reason <> 'DUPLICATE_ENTITLEMENT')"
)


def _refuse_duplicate_installments() -> None:
    """Installments that already pay one person a scheme twice for a period are the agency's to
    resolve (stop one entitlement, which cancels what is unsent): the upgrade names how many and
    stops rather than choose."""
    duplicated = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT COUNT(*) FROM (SELECT beneficiary_id, scheme, period FROM installments WHERE {_PAYABLE} "
                "GROUP BY beneficiary_id, scheme, period HAVING COUNT(*) > 1) AS twice"
            )
        )
        .scalar_one()
    )
    if duplicated:
        raise RuntimeError(
            f"{duplicated} person-scheme-period triples have more than one payable installment; "
            "stop the duplicate entitlements in intake and upgrade again"
        )
