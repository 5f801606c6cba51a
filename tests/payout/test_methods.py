"""The payment-method rules and their SQL twins agree: on the same rows and days, the Python
predicate, the SQLAlchemy expression and the SQL text the cycle's statements embed give the same
verdict, reason and counterparty, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Date, case, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from services.payout.adapters.orm import payment_methods
from services.payout.adapters.repository.cycles import counterparty_sql, hold_reason_sql, usable_sql
from services.payout.domain import model
from services.payout.domain.methods import (
    counterparty,
    counterparty_of,
    hold_reason,
    method_usable,
    usable,
)
from shared.db import make_engine
from tests.payout.harness import method_row

PERIOD_FIRST, PERIOD_LAST = date(2031, 3, 1), date(2031, 3, 31)
DAYS = (
    PERIOD_FIRST - timedelta(days=1),
    PERIOD_FIRST,
    date(2031, 3, 15),
    PERIOD_LAST,
    PERIOD_LAST + timedelta(days=1),
)
VCB = "970436"


def _representative(
    n: int, valid_from: date | None, valid_until: date | None, **overrides: Any
) -> dict[str, Any]:
    return method_row(
        n,
        method=model.AUTHORISED_ACCOUNT,
        representative_name="TRAN THI B",
        representative_valid_from=valid_from,
        representative_valid_until=valid_until,
        **overrides,
    )


ROWS = [
    method_row(1),  # verified own account
    method_row(2, status=model.METHOD_PENDING),  # not verified yet
    method_row(3, status=model.METHOD_FAILED, status_reason="NAME_MISMATCH"),
    method_row(4, status=model.METHOD_FAILED, status_reason="ACCOUNT_CLOSED"),  # a closed account
    method_row(5, status=model.METHOD_FLAGGED),
    method_row(
        6,
        method=model.CASH_POST_OFFICE,
        bank_bin=None,
        account_number=None,
        cash_reason="no account",
    ),
    _representative(7, PERIOD_FIRST, None),  # authorised from the period's first day
    _representative(8, None, PERIOD_FIRST),  # until the period's first day
    _representative(9, PERIOD_LAST, None),  # from the period's last day
    _representative(10, None, PERIOD_LAST),  # until the period's last day
    _representative(11, PERIOD_FIRST, PERIOD_LAST),  # exactly the period
    _representative(12, None, None),  # open-ended
    _representative(13, date(2031, 3, 10), date(2031, 3, 9)),  # an empty authorisation
    _representative(14, PERIOD_FIRST, PERIOD_LAST, status=model.METHOD_PENDING),
    _representative(15, PERIOD_FIRST, PERIOD_LAST, status=model.METHOD_FLAGGED),
]
PEOPLE = [row["beneficiary_id"] for row in ROWS] + ["B-without-a-method"]


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request, pg_database, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = (
        await pg_database("methods")
        if request.param == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path}/m.db"
    )
    made = make_engine(url)
    async with made.begin() as connection:
        await connection.run_sync(payment_methods.create)
        await connection.execute(payment_methods.insert(), ROWS)
    try:
        yield made
    finally:
        await made.dispose()


def _python(day: date) -> dict[str, tuple[bool, str | None, str | None]]:
    by_person = {row["beneficiary_id"]: row for row in ROWS}
    verdicts = {}
    for person in PEOPLE:
        method = by_person.get(person)
        verdicts[person] = (
            *method_usable(method, day),
            counterparty_of(method) if method else None,
        )
    return verdicts


def _probe() -> Any:
    return union_all(*(select(literal(person).label("b")) for person in PEOPLE)).subquery("ids")


async def _expression(
    engine: AsyncEngine, day: date
) -> dict[str, tuple[bool, str | None, str | None]]:
    pm, ids = payment_methods.alias("pm"), _probe()
    pays = usable(pm, literal(day, Date))
    query = select(
        ids.c.b,
        case((pays, 1), else_=0),
        case((pays, None), else_=hold_reason(pm)),
        case((pm.c.beneficiary_id.is_(None), None), else_=counterparty(pm)),
    ).select_from(ids.outerjoin(pm, pm.c.beneficiary_id == ids.c.b))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {b: (bool(pays_), reason, cp) for b, pays_, reason, cp in rows}


async def _text(engine: AsyncEngine, day: date) -> dict[str, tuple[bool, str | None, str | None]]:
    probe = " UNION ALL ".join(f"SELECT '{person}' AS b" for person in PEOPLE)
    query = text(
        f"SELECT ids.b, CASE WHEN {usable_sql()} THEN 1 ELSE 0 END, "
        f"CASE WHEN {usable_sql()} THEN NULL ELSE {hold_reason_sql()} END, "
        f"CASE WHEN pm.beneficiary_id IS NULL THEN NULL ELSE {counterparty_sql()} END "
        f"FROM ({probe}) ids LEFT JOIN payment_methods pm ON pm.beneficiary_id = ids.b"
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query, {"pay_date": day})).all()
    return {b: (bool(pays), reason, cp) for b, pays, reason, cp in rows}


class TestMethodRulesAndTheirSqlTwins:
    @pytest.mark.parametrize("day", DAYS, ids=str)
    async def test_python_expression_and_sql_text_agree_on_every_edge(self, engine, day):
        python = _python(day)
        assert await _expression(engine, day) == python
        assert await _text(engine, day) == python

    def test_the_edges_are_the_ones_meant(self):
        """The rows cover what they claim: a representative pays on the first and last day of
        the authorisation, not a day outside it; cash pays at the post office."""
        by_person = {row["beneficiary_id"]: row for row in ROWS}
        assert method_usable(by_person["B-7"], PERIOD_FIRST) == (True, None)
        assert method_usable(by_person["B-7"], PERIOD_FIRST - timedelta(days=1)) == (
            False,
            model.HOLD_AUTHORISATION,
        )
        assert method_usable(by_person["B-10"], PERIOD_LAST) == (True, None)
        assert method_usable(by_person["B-10"], PERIOD_LAST + timedelta(days=1)) == (
            False,
            model.HOLD_AUTHORISATION,
        )
        assert method_usable(by_person["B-4"], PERIOD_FIRST) == (False, model.HOLD_METHOD_FAILED)
        assert method_usable(by_person["B-5"], PERIOD_FIRST) == (False, model.HOLD_METHOD_FLAGGED)
        assert method_usable(None, PERIOD_FIRST) == (False, model.HOLD_NO_METHOD)
        assert counterparty_of(by_person["B-6"]) == model.VNPOST
        assert counterparty_of(by_person["B-1"]) == VCB
