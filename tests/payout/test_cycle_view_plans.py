"""The cycle view's comparison with the previous period finds each installment's counterpart by
its unique key (entitlement, period) on the embedded default too. SQLite has no hash join: a
join on the cycle instead walked every installment of the cycle for each installment of the
previous period, so preparing February after January at a province's size (100,000 × 100,000
rows) never answered."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from services.payout.adapters.orm import installments
from services.payout.adapters.repository.reads import COMPARED_WITH_PREVIOUS

# The join into the other period's installment: a search of one row by the unique key.
BY_UNIQUE_KEY = "(entitlement_id=? AND period=?)"


@pytest.fixture
def database(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "payout.db"
    engine = create_engine(f"sqlite:///{path}")
    installments.metadata.create_all(engine, tables=[installments.metadata.tables["cycles"]])
    installments.metadata.create_all(engine, tables=[installments])
    engine.dispose()
    return sqlite3.connect(path)


@pytest.mark.parametrize("name", sorted(COMPARED_WITH_PREVIOUS))
def test_the_other_period_is_searched_by_its_unique_key(database: sqlite3.Connection, name: str):
    sql = COMPARED_WITH_PREVIOUS[name]
    params = {"cycle_id": 2, "period": "2023-02", "previous": "2023-01"}
    plan = [row[3] for row in database.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    joined = [step for step in plan if "LEFT-JOIN" in step]
    assert joined, plan
    assert all(BY_UNIQUE_KEY in step for step in joined), plan
