"""The payout database: its tables, in one metadata that its Alembic history follows."""
from __future__ import annotations

from sqlalchemy import MetaData

from shared.inbox import inbox_table
from shared.outbox import outbox_tables

metadata = MetaData()
outbox, outbox_lanes = outbox_tables(metadata)
processed_messages = inbox_table(metadata)
