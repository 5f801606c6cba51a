"""Statements over many rows at once, the one home of how they are sent to each dialect.

On PostgreSQL a batch travels as one array per column: `unnest` turns the arrays back into rows
(one statement, one parameter set, however many rows), and a key list is one array compared with
`= ANY`. A long `IN` list would be a parameter per value, expanded and bound one by one, and
drifts to a generic plan that scans. SQLite has no arrays: an executemany and `IN` lists in chunks
under its parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, Table, bindparam, select, text, update
from sqlalchemy import func as sql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.expression import any_

SQLITE_CHUNK = 500  # values per IN list on SQLite: well under its bound-parameter limit


def _element(type_: Any) -> Any:
    """An array's element type: a string column's without its length, since a cast to
    `varchar(n)[]` cuts a longer value silently where the column itself would refuse it."""
    return String() if isinstance(type_, String) else type_


def _array(table: Table, column: str) -> Any:
    return bindparam(f"a_{column}", type_=ARRAY(_element(table.c[column].type)))


def insert_rows(postgres: bool, stmt: Any, rows: Sequence[dict[str, Any]]) -> tuple[Any, Any]:
    """`stmt` (an INSERT of `stmt.table`, with its ON CONFLICT clause) and the parameters that
    send `rows` with it: `conn.execute(*insert_rows(...))`. The rows' order is kept, so the row
    locks a batch takes follow the order the caller sorted them in. The rows (at least one) all
    have the same keys, and no two share a conflict key: one statement may not update a row
    twice."""
    if not postgres:
        return stmt, list(rows)
    columns = list(rows[0])
    table = stmt.table
    source = select(*(sql.unnest(_array(table, c)) for c in columns))
    return (
        stmt.from_select(columns, source),
        {f"a_{c}": [row[c] for row in rows] for c in columns},
    )


def one_of(postgres: bool, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`: one array parameter on PostgreSQL. On SQLite keep `values` within
    `SQLITE_CHUNK` (see `chunks`)."""
    if postgres:
        return column == any_(bindparam(None, list(values), type_=ARRAY(_element(column.type))))
    return column.in_(list(values))


def chunks(postgres: bool, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`values` in one piece on PostgreSQL, in pieces an SQLite IN list takes elsewhere."""
    if postgres:
        if values:
            yield values
        return
    for start in range(0, len(values), SQLITE_CHUNK):
        yield values[start : start + SQLITE_CHUNK]


def update_by_key(
    postgres: bool,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
) -> tuple[Any, Any]:
    """`UPDATE table SET column = row[column] … WHERE key = row[key]` for every row, as a
    statement and its parameters: `conn.execute(*update_by_key(...))`."""
    if not postgres:
        return (
            update(table)
            .where(table.c[key] == bindparam(f"_{key}"))
            .values({c: bindparam(f"_{c}") for c in columns}),
            [{f"_{k}": row[k] for k in (key, *columns)} for row in rows],
        )
    names = (key, *columns)
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    arrays = ", ".join(f":a_{c}" for c in names)
    statement = text(
        f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE {table.name}.{key} = v.{key}"
    ).bindparams(*(_array(table, c) for c in names))
    return statement, {f"a_{c}": [row[c] for row in rows] for c in names}
