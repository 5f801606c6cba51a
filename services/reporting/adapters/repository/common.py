"""What the repositories share: the connection they run on and how a write reports its rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# What a boundary opened: a plain connection for a read, `uow.db` for a write.
Db = AsyncConnection | AsyncSession


def changed(result: Result[Any]) -> bool:
    """Whether an UPDATE or DELETE touched a row (a session types its cursor result loosely)."""
    return isinstance(result, CursorResult) and bool(result.rowcount)
