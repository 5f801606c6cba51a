"""The intake database: its tables, in one metadata that its Alembic history follows."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from shared.db import BigId
from shared.inbox import inbox_table
from shared.outbox import outbox_tables

metadata = MetaData()
outbox, outbox_lanes = outbox_tables(metadata)
processed_messages = inbox_table(metadata)

Uuid = String(36)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("secret_hash", String(200), nullable=False),  # salted scrypt, never the secret
    Column("scopes", Text, nullable=False),  # space-separated
    Column("agency", String(10), nullable=True),  # an agency's client acts for that agency only
    Column("description", String(200), nullable=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(200), nullable=False),  # salted scrypt, never the password
    Column("name", String(200), nullable=False),
    Column("roles", Text, nullable=False),  # space-separated
    Column("agency", String(10), nullable=True),  # agency-bound roles act for this agency only
    Column("communes", Text, nullable=False, server_default=text("''")),  # space-separated codes
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("failed_attempts", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

beneficiaries = Table(
    "beneficiaries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("national_id", String(12), nullable=False),
    Column("full_name", String(200), nullable=False),  # NFC
    Column("date_of_birth", Date, nullable=False),
    Column("si_number", String(10), nullable=True),
    Column("commune_code", String(10), nullable=False),
    Column("commune_list_date", Date, nullable=False),
    Column("registered_via", String(10), nullable=False),  # PORTAL or ROLL
    Column("registered_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("national_id", name="uq_beneficiaries_national_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("portal_dossier_id", String(100), nullable=False),
    Column("beneficiary_id", Uuid, ForeignKey("beneficiaries.id"), nullable=False),
    Column("scheme", String(30), nullable=False),
    Column("agency", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("si_number", String(10), nullable=True),
    Column("commune_code", String(10), nullable=False),
    Column("commune_list_date", Date, nullable=False),
    Column("requested_method", String(30), nullable=False),
    Column("payment", JSON, nullable=False),  # the requested method and account, as filed
    Column("client_id", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decision", JSON, nullable=True),
    Column("entitlement_id", Uuid, nullable=True),
    UniqueConstraint("portal_dossier_id", name="uq_claims_portal_dossier_id"),
    Index("ix_claims_received", "received_at", "id"),
    Index("ix_claims_beneficiary", "beneficiary_id"),
    Index("ix_claims_status_received", "status", "received_at"),
)

entitlements = Table(
    "entitlements",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("beneficiary_id", Uuid, ForeignKey("beneficiaries.id"), nullable=False),
    Column("claim_id", Uuid, nullable=True),
    Column("scheme", String(30), nullable=False),
    Column("agency", String(10), nullable=False),
    Column("decision_number", String(100), nullable=False),
    Column("amount_per_installment", BigInteger, nullable=False),  # whole VND
    Column("schedule_kind", String(20), nullable=False),
    Column("start_period", String(7), nullable=False),
    Column("installments", Integer, nullable=True),
    Column("status", String(10), nullable=False),
    Column("stop_reason", String(30), nullable=True),
    Column("stop_effective_period", String(7), nullable=True),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
    Column("commune_code", String(10), nullable=False),
    Column("commune_list_date", Date, nullable=False),
    Column("source", String(10), nullable=False),  # DECISION or ROLL
    Column("client_id", String(100), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agency", "decision_number", name="uq_entitlements_decision"),
    Index("ix_entitlements_beneficiary", "beneficiary_id", "scheme"),
    # One open-ended entitlement per person and scheme, whatever races: a person is paid a scheme
    # once a period (services.intake.domain.entitlements judges finite and stopped ones).
    Index(
        "uq_entitlements_one_open_per_scheme",
        "beneficiary_id",
        "scheme",
        unique=True,
        postgresql_where=text("status = 'ACTIVE' AND schedule_kind = 'OPEN_MONTHLY'"),
        sqlite_where=text("status = 'ACTIVE' AND schedule_kind = 'OPEN_MONTHLY'"),
    ),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("beneficiary_id", Uuid, ForeignKey("beneficiaries.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("bank_bin", String(6), nullable=True),
    Column("account_number", String(19), nullable=True),
    Column("account_holder_name", String(200), nullable=True),
    Column("rep_national_id", String(12), nullable=True),
    Column("rep_full_name", String(200), nullable=True),
    Column("rep_relationship", String(100), nullable=True),
    Column("rep_power_of_attorney_ref", String(100), nullable=True),
    Column("rep_valid_from", Date, nullable=True),
    Column("rep_valid_until", Date, nullable=True),
    Column("cash_reason", String(500), nullable=True),
    Column("status", String(30), nullable=False),
    Column("status_reason", String(200), nullable=True),
    Column("channel", String(20), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status_changed_at", DateTime(timezone=True), nullable=False),
    Column("is_current", Boolean, nullable=False),
    Column("superseded_at", DateTime(timezone=True), nullable=True),
    Index(
        "uq_payment_methods_current",
        "beneficiary_id",
        unique=True,
        postgresql_where=text("is_current"),
        sqlite_where=text("is_current"),
    ),
    Index("ix_payment_methods_beneficiary", "beneficiary_id", "created_at"),
)

payment_method_history = Table(
    "payment_method_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("beneficiary_id", Uuid, nullable=False),
    Column("method_id", Uuid, nullable=False),
    Column("change", String(30), nullable=False),  # CREATED, SUPERSEDED, VERIFIED, FAILED, FLAGGED
    Column("status", String(30), nullable=False),
    Column("detail", JSON, nullable=True),  # masked
    Column("channel", String(20), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_payment_method_history_beneficiary", "beneficiary_id", "id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("action", String(60), nullable=False),
    Column("entity_type", String(40), nullable=False),
    Column("entity_id", String(100), nullable=False),
    Column("changes", JSON, nullable=False),  # field names and masked values only
    Column("correlation_id", String(64), nullable=True),
    Index("ix_audit_log_entity", "entity_type", "entity_id"),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("scope", String(30), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", LargeBinary, nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(20), nullable=False),  # ROLL or PAYMENT_METHODS
    Column("client_id", String(100), nullable=False),
    Column("filename", String(300), nullable=True),
    Column("format", String(10), nullable=False),  # JSON, CSV or XLSX
    Column("content_hash", String(64), nullable=False),
    Column("columns", JSON, nullable=False),
    Column("total_rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

upload_rows = Table(
    "upload_rows",
    metadata,
    Column("upload_id", Uuid, ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("row_number", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),  # REGISTERED, UPDATED, UNCHANGED or REJECTED
    Column("beneficiary_id", Uuid, nullable=True),
    Column("entity_id", Uuid, nullable=True),
    Column("errors", JSON, nullable=True),  # [{pointer, detail}] for a rejected row
    Column("raw", JSON, nullable=True),  # the rejected row's cells, to send back for fixing
)

# Identity revalidation's tables, in this metadata (their own module).
from services.intake.adapters import revalidation_tables as _revalidation_tables  # noqa: E402, F401
