"""Clients, beneficiaries, claims, entitlements, payment methods and their history, the audit
trail, idempotency records and uploads.

Revision ID: intake_0002
Revises: intake_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None

UUID = sa.String(36)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("agency", sa.String(10), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "beneficiaries",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("national_id", sa.String(12), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("si_number", sa.String(10), nullable=True),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("commune_list_date", sa.Date, nullable=False),
        sa.Column("registered_via", sa.String(10), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("national_id", name="uq_beneficiaries_national_id"),
    )
    op.create_table(
        "claims",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("portal_dossier_id", sa.String(100), nullable=False),
        sa.Column("beneficiary_id", UUID, sa.ForeignKey("beneficiaries.id"), nullable=False),
        sa.Column("scheme", sa.String(30), nullable=False),
        sa.Column("agency", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("si_number", sa.String(10), nullable=True),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("commune_list_date", sa.Date, nullable=False),
        sa.Column("requested_method", sa.String(30), nullable=False),
        sa.Column("payment", sa.JSON, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
        sa.Column("entitlement_id", UUID, nullable=True),
        sa.UniqueConstraint("portal_dossier_id", name="uq_claims_portal_dossier_id"),
    )
    op.create_index("ix_claims_received", "claims", ["received_at", "id"])
    op.create_index("ix_claims_beneficiary", "claims", ["beneficiary_id"])
    op.create_index("ix_claims_status_received", "claims", ["status", "received_at"])
    op.create_table(
        "entitlements",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("beneficiary_id", UUID, sa.ForeignKey("beneficiaries.id"), nullable=False),
        sa.Column("claim_id", UUID, nullable=True),
        sa.Column("scheme", sa.String(30), nullable=False),
        sa.Column("agency", sa.String(10), nullable=False),
        sa.Column("decision_number", sa.String(100), nullable=False),
        sa.Column("amount_per_installment", sa.BigInteger, nullable=False),
        sa.Column("schedule_kind", sa.String(20), nullable=False),
        sa.Column("start_period", sa.String(7), nullable=False),
        sa.Column("installments", sa.Integer, nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("stop_reason", sa.String(30), nullable=True),
        sa.Column("stop_effective_period", sa.String(7), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("commune_list_date", sa.Date, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agency", "decision_number", name="uq_entitlements_decision"),
    )
    op.create_index("ix_entitlements_beneficiary", "entitlements", ["beneficiary_id", "scheme"])
    op.create_table(
        "payment_methods",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("beneficiary_id", UUID, sa.ForeignKey("beneficiaries.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("bank_bin", sa.String(6), nullable=True),
        sa.Column("account_number", sa.String(19), nullable=True),
        sa.Column("account_holder_name", sa.String(200), nullable=True),
        sa.Column("rep_national_id", sa.String(12), nullable=True),
        sa.Column("rep_full_name", sa.String(200), nullable=True),
        sa.Column("rep_relationship", sa.String(100), nullable=True),
        sa.Column("rep_power_of_attorney_ref", sa.String(100), nullable=True),
        sa.Column("rep_valid_from", sa.Date, nullable=True),
        sa.Column("rep_valid_until", sa.Date, nullable=True),
        sa.Column("cash_reason", sa.String(500), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("status_reason", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_payment_methods_current",
        "payment_methods",
        ["beneficiary_id"],
        unique=True,
        postgresql_where=sa.text("is_current"),
        sqlite_where=sa.text("is_current"),
    )
    op.create_index(
        "ix_payment_methods_beneficiary", "payment_methods", ["beneficiary_id", "created_at"]
    )
    op.create_table(
        "payment_method_history",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("beneficiary_id", UUID, nullable=False),
        sa.Column("method_id", UUID, nullable=False),
        sa.Column("change", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("detail", sa.JSON, nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_payment_method_history_beneficiary", "payment_method_history", ["beneficiary_id", "id"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(100), nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    op.create_table(
        "idempotency_records",
        sa.Column("scope", sa.String(30), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", sa.LargeBinary, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("filename", sa.String(300), nullable=True),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("total_rows", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "upload_rows",
        sa.Column(
            "upload_id", UUID, sa.ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("row_number", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("beneficiary_id", UUID, nullable=True),
        sa.Column("entity_id", UUID, nullable=True),
        sa.Column("errors", sa.JSON, nullable=True),
        sa.Column("raw", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("upload_rows")
    op.drop_table("uploads")
    op.drop_table("idempotency_records")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_payment_method_history_beneficiary", table_name="payment_method_history")
    op.drop_table("payment_method_history")
    op.drop_index("ix_payment_methods_beneficiary", table_name="payment_methods")
    op.drop_index("uq_payment_methods_current", table_name="payment_methods")
    op.drop_table("payment_methods")
    op.drop_index("ix_entitlements_beneficiary", table_name="entitlements")
    op.drop_table("entitlements")
    op.drop_index("ix_claims_status_received", table_name="claims")
    op.drop_index("ix_claims_beneficiary", table_name="claims")
    op.drop_index("ix_claims_received", table_name="claims")
    op.drop_table("claims")
    op.drop_table("beneficiaries")
    op.drop_table("clients")
