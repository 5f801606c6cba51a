"""The relay finds the oldest pending rows of an embedded (SQLite) outbox through its pending
index, not by walking the table in id order through every published row the retention keeps."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.dialects import sqlite

from shared.outbox import oldest_pending, outbox_tables

WRITTEN = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_pending_rows_are_read_through_the_pending_index(tmp_path: Path):
    metadata = MetaData()
    outbox, _lanes = outbox_tables(metadata)
    path = tmp_path / "service.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    pending = select(outbox.c.id).where(outbox.c.published_at.is_(None))
    query = oldest_pending(pending, outbox, postgres=False, limit=500)
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    plan = [row[3] for row in sqlite3.connect(path).execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("USING INDEX ix_outbox_pending" in step for step in plan), plan


def test_they_are_the_oldest_pending_in_id_order(tmp_path: Path):
    metadata = MetaData()
    outbox, _lanes = outbox_tables(metadata)
    engine = create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    metadata.create_all(engine)
    rows = [
        {
            "id": n,
            "lane": n % 3,
            "event_id": f"e{n}",
            "event_type": "t",
            "topic": "t",
            "key": "k",
            "payload": b"{}",
            "created_at": WRITTEN,
            "published_at": WRITTEN if n % 4 else None,
        }
        for n in range(1, 41)
    ]
    pending = select(outbox.c.id).where(outbox.c.published_at.is_(None))
    with engine.begin() as db:
        db.execute(outbox.insert(), rows)
        found = db.execute(oldest_pending(pending, outbox, postgres=False, limit=5)).scalars()
        assert list(found) == [4, 8, 12, 16, 20]
    engine.dispose()
