"""Row-by-key updates in bulk. On PostgreSQL one statement joins the table with `unnest` of one
array per column (no per-row statement overhead); elsewhere an executemany."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.db import is_postgres


async def update_by_key(
    db: AsyncSession | AsyncConnection,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
) -> None:
    """`UPDATE table SET column = row[column] … WHERE key = row[key]` for every row."""
    if not rows:
        return
    if not is_postgres(db):
        await db.execute(
            update(table)
            .where(table.c[key] == bindparam(f"_{key}"))
            .values({c: bindparam(f"_{c}") for c in columns}),
            [{f"_{k}": row[k] for k in (key, *columns)} for row in rows],
        )
        return
    names = (key, *columns)
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    arrays = ", ".join(f":a_{c}" for c in names)
    statement = text(
        f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE {table.name}.{key} = v.{key}"
    ).bindparams(*(bindparam(f"a_{c}", type_=ARRAY(table.c[c].type)) for c in names))
    await db.execute(statement, {f"a_{c}": [row[c] for row in rows] for c in names})
