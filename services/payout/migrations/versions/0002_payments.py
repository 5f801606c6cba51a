"""The payout's view of intake, cycles, installments, attempts, batches, callbacks and
reconciliation.

Revision ID: payout_0002
Revises: payout_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "payout_0002"
down_revision = "payout_0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "beneficiaries",
        sa.Column("beneficiary_id", sa.String(64), primary_key=True),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("commune_list_date", sa.Date, nullable=False),
        sa.Column("registered_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
    )
    op.create_table(
        "entitlements",
        sa.Column("entitlement_id", sa.String(64), primary_key=True),
        sa.Column("beneficiary_id", sa.String(64), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("decision_number", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("schedule_kind", sa.String(16), nullable=False),
        sa.Column("start_period", sa.String(7), nullable=False),
        sa.Column("installments", sa.Integer, nullable=True),
        sa.Column("end_period", sa.String(7), nullable=True),
        sa.Column("stop_period", sa.String(7), nullable=True),
        sa.Column("stop_reason", sa.String(64), nullable=True),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("commune_list_date", sa.Date, nullable=False),
        sa.Column("granted_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
    )
    op.create_index("ix_entitlements_beneficiary_id", "entitlements", ["beneficiary_id"])
    op.create_table(
        "payment_methods",
        sa.Column("beneficiary_id", sa.String(64), primary_key=True),
        sa.Column("method_id", sa.String(64), nullable=False, unique=True),
        sa.Column("method", sa.String(24), nullable=False),
        sa.Column("bank_bin", sa.String(6), nullable=True),
        sa.Column("account_number", sa.String(34), nullable=True),
        sa.Column("account_holder_name", sa.String(200), nullable=True),
        sa.Column("verified_name", sa.String(200), nullable=True),
        sa.Column("representative_name", sa.String(200), nullable=True),
        sa.Column("representative_valid_from", sa.Date, nullable=True),
        sa.Column("representative_valid_until", sa.Date, nullable=True),
        sa.Column("cash_reason", sa.String(200), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("status_reason", sa.String(40), nullable=True),
        sa.Column("changed_at", utc(), nullable=False),
        sa.Column("verified_at", utc(), nullable=True),
        sa.Column("updated_at", utc(), nullable=False),
    )
    op.create_table(
        "verifications",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("method_id", sa.String(64), nullable=False, unique=True),
        sa.Column("beneficiary_id", sa.String(64), nullable=False),
        sa.Column("bank_bin", sa.String(6), nullable=False),
        sa.Column("account_number", sa.String(34), nullable=False),
        sa.Column("expected_name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", utc(), nullable=False),
        sa.Column("lease_until", utc(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("completed_at", utc(), nullable=True),
    )
    op.create_index("ix_verifications_beneficiary_id", "verifications", ["beneficiary_id"])
    op.create_index("ix_verifications_due", "verifications", ["state", "next_attempt_at"])
    op.create_table(
        "cycles",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("period", sa.String(7), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("batch_runs", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "installments",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("cycle_id", sa.BigInteger, sa.ForeignKey("cycles.id"), nullable=False),
        sa.Column("entitlement_id", sa.String(64), nullable=False),
        sa.Column("beneficiary_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("commune_list_date", sa.Date, nullable=False),
        sa.Column("channel", sa.String(24), nullable=True),
        sa.Column("counterparty", sa.String(8), nullable=True),
        sa.Column("method_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("hold_reason", sa.String(40), nullable=True),
        sa.Column("reason_code", sa.String(40), nullable=True),
        sa.Column("reason_text", sa.String(300), nullable=True),
        sa.Column("attempt_no", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("bank_reference", sa.String(64), nullable=True),
        sa.Column("settled_at", utc(), nullable=True),
        sa.Column("paid_on", sa.Date, nullable=True),
        sa.Column("staff_id", sa.String(64), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.UniqueConstraint("entitlement_id", "period", name="uq_installments_entitlement_period"),
    )
    op.create_index("ix_installments_beneficiary_id", "installments", ["beneficiary_id"])
    op.create_index("ix_installments_cycle_state", "installments", ["cycle_id", "state"])
    op.create_table(
        "payment_attempts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "installment_id", sa.BigInteger, sa.ForeignKey("installments.id"), nullable=False
        ),
        sa.Column("attempt_no", sa.SmallInteger, nullable=False),
        sa.Column("end_to_end_id", sa.String(35), nullable=False, unique=True),
        sa.Column("cycle_id", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(24), nullable=False),
        sa.Column("counterparty", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("account_number", sa.String(34), nullable=True),
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("commune_code", sa.String(10), nullable=True),
        sa.Column("remittance_info", sa.String(140), nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=True),
        sa.Column("bank_reference", sa.String(64), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("submitted_at", utc(), nullable=True),
        sa.Column("finished_at", utc(), nullable=True),
        sa.UniqueConstraint(
            "installment_id", "attempt_no", name="uq_payment_attempts_installment_attempt"
        ),
    )
    op.create_index("ix_payment_attempts_batch_id", "payment_attempts", ["batch_id"])
    op.create_index(
        "ix_payment_attempts_unbatched",
        "payment_attempts",
        ["cycle_id"],
        postgresql_where=sa.text("batch_id IS NULL"),
        sqlite_where=sa.text("batch_id IS NULL"),
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("cycle_id", sa.BigInteger, sa.ForeignKey("cycles.id"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("counterparty", sa.String(8), nullable=False),
        sa.Column("control_count", sa.Integer, nullable=False),
        sa.Column("control_sum", sa.BigInteger, nullable=False),
        sa.Column("execution_date", sa.Date, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("inquiries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", utc(), nullable=False),
        sa.Column("lease_until", utc(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("submitted_at", utc(), nullable=True),
        sa.Column("completed_at", utc(), nullable=True),
        sa.Column("updated_at", utc(), nullable=False),
    )
    op.create_index("ix_batches_due", "batches", ["state", "next_attempt_at"])
    op.create_index("ix_batches_cycle", "batches", ["cycle_id", "counterparty"])
    op.create_table(
        "callback_events",
        sa.Column("counterparty", sa.String(8), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("delivery_id", sa.String(100), nullable=False),
        sa.Column("end_to_end_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", utc(), nullable=False),
        sa.Column("received_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("counterparty", "event_id", name="pk_callback_events"),
    )
    op.create_table(
        "payment_anomalies",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("counterparty", sa.String(8), nullable=False),
        sa.Column("end_to_end_id", sa.String(64), nullable=False),
        sa.Column("installment_id", sa.BigInteger, nullable=True),
        sa.Column("event_id", sa.String(100), nullable=True),
        sa.Column("reported_status", sa.String(16), nullable=True),
        sa.Column("expected_amount", sa.BigInteger, nullable=True),
        sa.Column("reported_amount", sa.BigInteger, nullable=True),
        sa.Column("created_at", utc(), nullable=False),
    )
    op.create_index("ix_payment_anomalies_installment", "payment_anomalies", ["installment_id"])
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("counterparty", sa.String(8), nullable=False),
        sa.Column("statement_date", sa.Date, nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_reconciliation_runs_lookup", "reconciliation_runs", ["counterparty", "statement_date"]
    )
    op.create_table(
        "reconciliation_lines",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("reconciliation_runs.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("end_to_end_id", sa.String(64), nullable=False),
        sa.Column("installment_id", sa.BigInteger, nullable=True),
        sa.Column("our_amount", sa.BigInteger, nullable=True),
        sa.Column("bank_amount", sa.BigInteger, nullable=True),
        sa.Column("our_state", sa.String(16), nullable=True),
        sa.Column("bank_status", sa.String(16), nullable=True),
        sa.Column("bank_reference", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_reconciliation_lines_run_kind", "reconciliation_lines", ["run_id", "kind", "id"]
    )


def downgrade() -> None:
    for index, table in (
        ("ix_reconciliation_lines_run_kind", "reconciliation_lines"),
        ("ix_reconciliation_runs_lookup", "reconciliation_runs"),
        ("ix_payment_anomalies_installment", "payment_anomalies"),
        ("ix_batches_cycle", "batches"),
        ("ix_batches_due", "batches"),
        ("ix_payment_attempts_unbatched", "payment_attempts"),
        ("ix_payment_attempts_batch_id", "payment_attempts"),
        ("ix_installments_cycle_state", "installments"),
        ("ix_installments_beneficiary_id", "installments"),
        ("ix_verifications_due", "verifications"),
        ("ix_verifications_beneficiary_id", "verifications"),
        ("ix_entitlements_beneficiary_id", "entitlements"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "reconciliation_lines",
        "reconciliation_runs",
        "payment_anomalies",
        "callback_events",
        "batches",
        "payment_attempts",
        "installments",
        "cycles",
        "verifications",
        "payment_methods",
        "entitlements",
        "beneficiaries",
    ):
        op.drop_table(table)
