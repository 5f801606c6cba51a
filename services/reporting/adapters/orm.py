"""The reporting database: its tables, in one metadata that its Alembic history follows.

Read models (rebuilt from the event topics):
- `payment_facts`: one row per installment, its latest state (the de-duplication key).
- `payment_people`: one row per (period, beneficiary, scheme): the cell the person counts in.
- `claim_facts`: one row per claim: where and when it was received and decided.
- `payment_cube`, `claim_cube`: counters per (period, commune, list date, scheme, agency[, channel]),
  with the reporting area (commune, district, province, urban/rural) resolved at write time.
- `payment_rollup`, `claim_rollup`: the same counters per district and urban/rural, kept in the
  same transaction. Every dashboard query reads the rollups or the cubes, never the facts.
- `envelope_budgets`, `envelope_approvals`: funds envelopes and the approvals counted against them.
Configuration: `targets`. Control: `projection_state` (generation, rebuild state, freshness).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.reporting.domain.model import CLAIM_COUNTERS, PAYMENT_COUNTERS
from shared.inbox import inbox_table
from shared.outbox import outbox_tables

metadata = MetaData()
outbox, outbox_lanes = outbox_tables(metadata)
processed_messages = inbox_table(metadata)


def _counters(names: tuple[str, ...]) -> list[Column[int]]:
    """The counter columns, in the order the domain names them."""
    return [Column(name, BigInteger, nullable=False, server_default="0") for name in names]


def _cube_key() -> list[Column[Any]]:
    """A cell of a cube, the channel aside (payments only)."""
    return [
        Column("period", String(7), primary_key=True),
        Column("commune_code", String(16), primary_key=True),
        Column("list_date", Date, primary_key=True),
        Column("scheme", String(32), primary_key=True),
        Column("agency", String(16), primary_key=True),
    ]


def _rollup_key() -> list[Column[Any]]:
    """A cell of a rollup: the cube's cell with the commune replaced by its reporting area."""
    return [
        Column("period", String(7), primary_key=True),
        Column("area_province", String(8), primary_key=True),
        Column("area_district", String(16), primary_key=True),
        Column("area_type", String(8), primary_key=True),
        Column("scheme", String(32), primary_key=True),
        Column("agency", String(16), primary_key=True),
    ]


def _area_columns() -> list[Column[Any]]:
    return [
        Column("area_commune", String(16), nullable=False),
        Column("area_list", Date, nullable=False),
        Column("area_district", String(16), nullable=False),
        Column("area_province", String(8), nullable=False),
        Column("area_type", String(8), nullable=False),
    ]


projection_state = Table(
    "projection_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # ACTIVE or REBUILDING
    Column("events_applied", BigInteger, nullable=False, server_default="0"),
    Column("last_event_at", DateTime(timezone=True), nullable=True),
    Column("last_applied_at", DateTime(timezone=True), nullable=True),
    Column("rebuild_started_at", DateTime(timezone=True), nullable=True),
    Column("rebuilt_at", DateTime(timezone=True), nullable=True),
)

payment_facts = Table(
    "payment_facts",
    metadata,
    Column("installment_id", String(64), primary_key=True),
    Column("beneficiary_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("commune_code", String(16), nullable=False),
    Column("list_date", Date, nullable=False),
    Column("state", String(20), nullable=False),
    Column("state_at", DateTime(timezone=True), nullable=False),
    Index("ix_payment_facts_person", "period", "beneficiary_id", "scheme"),
)

payment_people = Table(
    "payment_people",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("beneficiary_id", String(64), primary_key=True),
    Column("scheme", String(32), primary_key=True),
    # The cell the person counts in; all null while nothing of theirs is paid in that period.
    Column("commune_code", String(16), nullable=True),
    Column("list_date", Date, nullable=True),
    Column("agency", String(16), nullable=True),
    Column("channel", String(32), nullable=True),
)

claim_facts = Table(
    "claim_facts",
    metadata,
    Column("claim_id", String(64), primary_key=True),
    Column("received_period", String(7), nullable=True),
    Column("received_commune", String(16), nullable=True),
    Column("received_list", Date, nullable=True),
    Column("received_scheme", String(32), nullable=True),
    Column("received_agency", String(16), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=True),
    Column("decided_period", String(7), nullable=True),
    Column("decided_commune", String(16), nullable=True),
    Column("decided_list", Date, nullable=True),
    Column("decided_scheme", String(32), nullable=True),
    Column("decided_agency", String(16), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

payment_cube = Table(
    "payment_cube",
    metadata,
    *_cube_key(),
    Column("channel", String(32), primary_key=True),
    *_area_columns(),
    *_counters(PAYMENT_COUNTERS),
    Index("ix_payment_cube_scheme_period", "scheme", "period"),
)

claim_cube = Table(
    "claim_cube",
    metadata,
    *_cube_key(),
    *_area_columns(),
    *_counters(CLAIM_COUNTERS),
)

# The same counters without the commune: what every query above commune level reads (a few
# hundred rows per period however many beneficiaries there are).
payment_rollup = Table(
    "payment_rollup",
    metadata,
    *_rollup_key(),
    Column("channel", String(32), primary_key=True),
    *_counters(PAYMENT_COUNTERS),
)

claim_rollup = Table(
    "claim_rollup",
    metadata,
    *_rollup_key(),
    *_counters(CLAIM_COUNTERS),
)

targets = Table(
    "targets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("title_vi", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("area_type", String(8), nullable=False),  # URBAN, RURAL or ALL
    Column("area_level", String(16), nullable=False),  # province, district or commune
    Column("area_code", String(16), nullable=True),
    Column("schemes", Text, nullable=False),  # comma-separated scheme codes
    Column("target_bp", Integer, nullable=False),  # basis points: 2500 = 25%
    Column("deadline", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Funds envelopes, from payout's cycle topic: the latest budget per (period, agency, scheme), and
# each approval's line per scheme (the approval id is the de-duplication key).
envelope_budgets = Table(
    "envelope_budgets",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("agency", String(16), primary_key=True),
    Column("scheme", String(32), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

envelope_approvals = Table(
    "envelope_approvals",
    metadata,
    Column("approval_id", String(64), primary_key=True),
    Column("scheme", String(32), primary_key=True),
    Column("period", String(7), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("envelope", BigInteger, nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=False),
    Index("ix_envelope_approvals_period", "period", "agency", "scheme"),
)

READ_MODEL_TABLES = (
    payment_facts,
    payment_people,
    claim_facts,
    payment_cube,
    claim_cube,
    payment_rollup,
    claim_rollup,
    envelope_budgets,
    envelope_approvals,
)
PROJECTIONS = "projections"
