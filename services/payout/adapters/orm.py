"""The payout database: its tables, in one metadata that its Alembic history follows.

Money is `BigInteger` whole đồng; times are UTC (`DateTime(timezone=True)`); periods are
`YYYY-MM` strings in Vietnam time, which sort like the months they name.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    text,
)

from services.payout.domain import model
from shared.db import BigId
from shared.inbox import inbox_table
from shared.outbox import outbox_tables

metadata = MetaData()
outbox, outbox_lanes = outbox_tables(metadata)
processed_messages = inbox_table(metadata)

Money = BigInteger
UtcTime = DateTime(timezone=True)


# --- the payout's own view of intake's world ------------------------------------------------

beneficiaries = Table(
    "beneficiaries",
    metadata,
    Column("beneficiary_id", String(64), primary_key=True),
    Column("full_name", String(200), nullable=False),
    Column("commune_code", String(10), nullable=False),
    Column("commune_list_date", Date, nullable=False),
    Column("registered_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
)

entitlements = Table(
    "entitlements",
    metadata,
    Column("entitlement_id", String(64), primary_key=True),
    Column("beneficiary_id", String(64), nullable=False, index=True),
    Column("scheme", String(32), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("decision_number", String(100), nullable=False),
    Column("amount", Money, nullable=False),
    Column("schedule_kind", String(16), nullable=False),
    Column("start_period", String(7), nullable=False),
    Column("installments", Integer, nullable=True),
    Column("end_period", String(7), nullable=True),  # last period paid; NULL: open-ended
    Column("stop_period", String(7), nullable=True),  # first period NOT paid
    Column("stop_reason", String(64), nullable=True),
    Column("commune_code", String(10), nullable=False),
    Column("commune_list_date", Date, nullable=False),
    Column("granted_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("beneficiary_id", String(64), primary_key=True),  # the current method only
    Column("method_id", String(64), nullable=False, unique=True),
    Column("method", String(24), nullable=False),
    Column("bank_bin", String(6), nullable=True),
    Column("account_number", String(34), nullable=True),
    Column("account_holder_name", String(200), nullable=True),
    Column("verified_name", String(200), nullable=True),  # the name the bank keeps
    Column("representative_name", String(200), nullable=True),
    Column("representative_valid_from", Date, nullable=True),
    Column("representative_valid_until", Date, nullable=True),
    Column("cash_reason", String(500), nullable=True),
    # PENDING_VERIFICATION | VERIFIED | FAILED | FLAGGED
    Column("status", String(24), nullable=False),
    Column("status_reason", String(40), nullable=True),
    Column("changed_at", UtcTime, nullable=False),
    Column("verified_at", UtcTime, nullable=True),
    Column("updated_at", UtcTime, nullable=False),
)

verifications = Table(
    "verifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("method_id", String(64), nullable=False, unique=True),
    Column("beneficiary_id", String(64), nullable=False, index=True),
    Column("bank_bin", String(6), nullable=False),
    Column("account_number", String(34), nullable=False),
    Column("expected_name", String(200), nullable=False),
    # PENDING | IN_PROGRESS | VERIFIED | FAILED | SUPERSEDED
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcTime, nullable=False),
    Column("lease_until", UtcTime, nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Column("completed_at", UtcTime, nullable=True),
    Index("ix_verifications_due", "state", "next_attempt_at"),
)


# --- cycles, installments, attempts and batches ---------------------------------------------

cycles = Table(
    "cycles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("period", String(7), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("started_at", UtcTime, nullable=False),
    Column("started_by", String(100), nullable=False),
    Column("batch_runs", Integer, nullable=False, server_default="0"),
    # Created in chunks: set when every entitlement due has been through one.
    Column("creation_finished_at", UtcTime, nullable=True),
    Column("prepared_by", String(100), nullable=True),  # who last prepared it
    Column("pay_date", Date, nullable=True),  # the calendar's pay date, when it has one
)


def payable_installment(alias: str = "") -> str:
    """SQL condition: the installment may pay its person's scheme for its period (at most one
    does); the index below and the cycle's queries use this one text, so the index serves them."""
    a = f"{alias}." if alias else ""
    return f"{a}state <> 'CANCELLED' AND ({a}hold_reason IS NULL OR {a}hold_reason <> 'DUPLICATE_ENTITLEMENT')"


installments = Table(
    "installments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cycle_id", BigInteger, ForeignKey("cycles.id"), nullable=False),
    Column("entitlement_id", String(64), nullable=False),
    Column("beneficiary_id", String(64), nullable=False, index=True),
    Column("period", String(7), nullable=False),
    Column("amount", Money, nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("commune_code", String(10), nullable=False),
    Column("commune_list_date", Date, nullable=False),
    Column(
        "channel", String(24), nullable=True
    ),  # OWN_ACCOUNT | AUTHORISED_ACCOUNT | CASH_POST_OFFICE
    Column("counterparty", String(8), nullable=True),  # BIN or VNPOST
    Column("method_id", String(64), nullable=True),
    # SCHEDULED | SUBMITTED | SETTLED | FAILED | RETURNED | PAID_CASH | CANCELLED | ON_HOLD
    Column("state", String(16), nullable=False),
    Column("hold_reason", String(40), nullable=True),
    Column("reason_code", String(model.REASON_CODE_LENGTH), nullable=True),
    Column("reason_text", String(model.REASON_TEXT_LENGTH), nullable=True),
    Column("attempt_no", SmallInteger, nullable=False, server_default="0"),  # current attempt
    Column("bank_reference", String(model.BANK_REFERENCE_LENGTH), nullable=True),
    Column("settled_at", UtcTime, nullable=True),
    Column("paid_on", Date, nullable=True),
    Column("staff_id", String(model.STAFF_ID_LENGTH), nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
    # The database, not the code, makes sure an entitlement yields one installment a period.
    UniqueConstraint("entitlement_id", "period", name="uq_installments_entitlement_period"),
    Index("ix_installments_cycle_state", "cycle_id", "state"),
    # ... and that a person is paid a scheme once a period, whatever entitlements payout was told
    # of: the second one's installment is held as a duplicate (or cancelled) and stays out.
    Index(
        "uq_installments_person_scheme_period",
        "beneficiary_id",
        "scheme",
        "period",
        unique=True,
        postgresql_where=text(payable_installment()),
        sqlite_where=text(payable_installment()),
    ),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("installment_id", BigInteger, ForeignKey("installments.id"), nullable=False),
    Column("attempt_no", SmallInteger, nullable=False),
    Column("end_to_end_id", String(35), nullable=False, unique=True),
    Column("cycle_id", BigInteger, nullable=False),
    Column("channel", String(24), nullable=False),
    Column("counterparty", String(8), nullable=False),
    Column("amount", Money, nullable=False),
    Column("account_number", String(34), nullable=True),
    Column("account_name", String(200), nullable=False),
    Column("commune_code", String(10), nullable=True),
    Column("remittance_info", String(140), nullable=False),
    Column("batch_id", String(40), nullable=True, index=True),
    # CREATED | SUBMITTED | SETTLED | FAILED | RETURNED | PAID_CASH | CANCELLED
    Column("state", String(16), nullable=False),
    Column("reason_code", String(40), nullable=True),
    Column("bank_reference", String(64), nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Column("submitted_at", UtcTime, nullable=True),
    Column("finished_at", UtcTime, nullable=True),
    UniqueConstraint(
        "installment_id", "attempt_no", name="uq_payment_attempts_installment_attempt"
    ),
    Index(
        "ix_payment_attempts_unbatched",
        "cycle_id",
        postgresql_where=text("batch_id IS NULL"),
        sqlite_where=text("batch_id IS NULL"),
    ),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(40), primary_key=True),  # the idempotency key of its submission
    Column("cycle_id", BigInteger, ForeignKey("cycles.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("counterparty", String(8), nullable=False),
    Column("control_count", Integer, nullable=False),
    Column("control_sum", Money, nullable=False),
    Column("execution_date", Date, nullable=False),
    # PREPARED (awaits approval; never claimed) | READY | SENDING | RETRY | UNKNOWN | INQUIRING
    # | SUBMITTED | COMPLETED | REJECTED | CANCELLED
    Column("state", String(16), nullable=False),
    Column("prepared_by", String(100), nullable=False),
    Column("approval_id", BigInteger, nullable=True),  # the approval that released it
    # Items taken out after the approval, never sent (a method that no longer pays): what the
    # approval released is what the batch carries plus these.
    Column("withdrawn_count", Integer, nullable=False, server_default="0"),
    Column("withdrawn_sum", Money, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("inquiries", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcTime, nullable=False),
    Column("lease_until", UtcTime, nullable=True),
    # Fencing token: incremented by every claim; only the holder of the current one may write.
    Column("lease_token", Integer, nullable=False, server_default="0"),
    Column("last_error", String(300), nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Column("submitted_at", UtcTime, nullable=True),
    Column("completed_at", UtcTime, nullable=True),
    Column("updated_at", UtcTime, nullable=False),
    Index("ix_batches_due", "state", "next_attempt_at"),
    Index("ix_batches_cycle", "cycle_id", "counterparty"),
    Index("ix_batches_cycle_agency_state", "cycle_id", "agency", "state"),
    Index("ix_batches_approval", "approval_id"),
)

# One row per decision on what awaited approval for a period and an agency.
cycle_approvals = Table(
    "cycle_approvals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cycle_id", BigInteger, ForeignKey("cycles.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("decision", String(8), nullable=False),  # APPROVE | REJECT
    Column("digest", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("amount", Money, nullable=False),
    Column("totals", JSON, nullable=False),  # [{scheme, count, amount, envelope}]
    Column("reason", String(500), nullable=True),
    Column("decided_by", String(100), nullable=False),
    Column("decided_by_name", String(200), nullable=True),
    Column("prepared_by", String(500), nullable=False),
    Column("decided_at", UtcTime, nullable=False),
    Index("ix_cycle_approvals_period_agency", "period", "agency", "id"),
)

# The funds an agency may pay a scheme in a period.
envelopes = Table(
    "envelopes",
    metadata,
    Column("period", String(7), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("amount", Money, nullable=False),
    Column("set_by", String(100), nullable=False),
    Column("set_at", UtcTime, nullable=False),
    PrimaryKeyConstraint("period", "agency", "scheme", name="pk_envelopes"),
)

# When a period is prepared and paid: periods sharing a pay date are one calendar entry.
payment_calendar = Table(
    "payment_calendar",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("pay_date", Date, nullable=False),
    Column("prepare_on", Date, nullable=False),
    Column("set_by", String(100), nullable=False),
    Column("set_at", UtcTime, nullable=False),
    Index("ix_payment_calendar_prepare_on", "prepare_on"),
)


# --- callbacks, anomalies and reconciliation ------------------------------------------------

callback_events = Table(
    "callback_events",
    metadata,
    Column("counterparty", String(8), nullable=False),
    Column("event_id", String(100), nullable=False),
    Column("delivery_id", String(100), nullable=False),
    Column("end_to_end_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount", Money, nullable=False),
    Column("occurred_at", UtcTime, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    # A replayed event id is refused: the key admits it once per counterparty.
    PrimaryKeyConstraint("counterparty", "event_id", name="pk_callback_events"),
)

payment_anomalies = Table(
    "payment_anomalies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # AMOUNT_MISMATCH | UNKNOWN_PAYMENT | WRONG_COUNTERPARTY | SUPERSEDED_ATTEMPT | CONFLICTING_OUTCOME
    # | DUPLICATE_ENTITLEMENT (found by the cycle, before any counterparty: no end-to-end id)
    Column("kind", String(40), nullable=False),
    Column("counterparty", String(8), nullable=True),
    Column("end_to_end_id", String(64), nullable=True),
    Column("installment_id", BigInteger, nullable=True),
    Column(
        "paid_by_entitlement_id", String(64), nullable=True
    ),  # DUPLICATE_ENTITLEMENT: who pays instead
    Column("event_id", String(100), nullable=True),
    Column("reported_status", String(16), nullable=True),
    Column("expected_amount", Money, nullable=True),
    Column("reported_amount", Money, nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Index("ix_payment_anomalies_installment", "installment_id"),
    Index("ix_payment_anomalies_kind", "kind", "id"),
)

reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("counterparty", String(8), nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("summary", JSON, nullable=False),
    Index("ix_reconciliation_runs_lookup", "counterparty", "statement_date"),
)

reconciliation_lines = Table(
    "reconciliation_lines",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigInteger, ForeignKey("reconciliation_runs.id"), nullable=False),
    # MATCHED | MISSING_AT_BANK | UNKNOWN_TO_US | AMOUNT_DIFFERS | STATUS_DIFFERS
    Column("kind", String(20), nullable=False),
    Column("end_to_end_id", String(64), nullable=False),
    Column("installment_id", BigInteger, nullable=True),
    Column("our_amount", Money, nullable=True),
    Column("bank_amount", Money, nullable=True),
    Column("our_state", String(16), nullable=True),
    Column("bank_status", String(16), nullable=True),
    Column("bank_reference", String(64), nullable=True),
    Index("ix_reconciliation_lines_run_kind", "run_id", "kind", "id"),
)

# Identity revalidation's tables, in this metadata (their own module).
from services.payout.adapters import identity_tables as _identity_tables  # noqa: E402, F401
