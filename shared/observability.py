"""Correlation ids and JSON logs. Log records carry ids and counts, never personal data."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str:
    value = correlation_id.get()
    if value is None:
        value = new_correlation_id()
        correlation_id.set(value)
    return value


# --- errors, described without the data they were about -----------------------------------
# A database error's text carries values: asyncpg quotes a bad argument ("invalid input for query
# argument $3: 'Nguyễn Văn A'"), PostgreSQL's DETAIL repeats the row or key ("Key (national_id)=
# (026…) already exists"), pydantic repeats the input. Logs and dead-letter headers get the kind
# of error and where it happened, never its text.
_LONG_DIGITS = re.compile(r"\d{9,}")  # CCCD (12), SI number (10), account numbers


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong, safe for logs and headers."""
    name = type(exc).__name__
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    statement = getattr(exc, "statement", None)
    if orig is not None and statement is not None:
        driver = getattr(orig, "__cause__", None) or orig
        return (
            f"{name}: {_database_error(driver, orig)} in [{' '.join(str(statement).split())[:300]}]"
        )
    if getattr(exc, "sqlstate", None) is not None or _is_sqlite_error(exc):
        return f"{name}: {_database_error(exc, exc)}"
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__module__.startswith("pydantic"):
        return f"{name}: {validation_summary(exc)}"
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{name}: {_LONG_DIGITS.sub('<digits>', first_line)[:300]}"


def validation_summary(exc: BaseException) -> str:
    """Field locations and messages of a pydantic ValidationError: the values may be personal data."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return ""
    return "; ".join(f"/{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())[:1000]


def _database_error(driver: BaseException, adapted: BaseException) -> str:
    parts = [type(driver).__name__]
    sqlstate = getattr(driver, "sqlstate", None) or getattr(adapted, "sqlstate", None)
    if sqlstate:
        parts.append(f"SQLSTATE {sqlstate}")
    for attribute in ("table_name", "column_name", "constraint_name"):  # names, never values
        value = getattr(driver, attribute, None)
        if value:
            parts.append(f"{attribute.removesuffix('_name')} {value}")
    if _is_sqlite_error(driver):
        # SQLite names the constraint and columns ("UNIQUE constraint failed: t.c"), never values.
        parts.append((str(driver).splitlines() or [""])[0][:200])
    return ", ".join(parts)


def _is_sqlite_error(exc: BaseException) -> bool:
    return type(exc).__module__ == "sqlite3"


def safe_traceback(exc: BaseException) -> str:
    """A traceback like Python's, frames and all, with each exception of the chain described by
    `describe_error` instead of its text."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = (
                current.__cause__,
                "The above exception was the direct cause of the following exception:",
            )
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = (
                current.__context__,
                "During handling of the above exception, another exception occurred:",
            )
        else:
            current = None
    lines: list[str] = []
    for error, following in reversed(chain):
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(error.__traceback__)
        lines.append(describe_error(error) + "\n")
        if following:
            lines.append(f"\n{following}\n\n")
    return "".join(lines).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "correlation_id": correlation_id.get(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def formatException(self, ei: Any) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        if isinstance(exc, BaseException):
            return safe_traceback(exc)
        return super().formatException(ei)


def configure_logging(level: str = "INFO", service: str | None = None) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints request paths, which may hold ids: keep it out.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel("WARNING")
    # At DEBUG these print every statement with its parameters (names, CCCDs): never, whatever the level.
    for chatty in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(chatty).setLevel("WARNING")
