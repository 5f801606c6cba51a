"""Cursors of the API's lists: the key of the last row of a page, opaque to the caller."""

from __future__ import annotations

import base64
from typing import Any

from shared.web import ProblemError


class BadCursor(ValueError):
    pass


def encode_cursor(value: int | str) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("the cursor is not one this API gave out") from exc
    if len(text) > 64 or not text.isprintable():  # our cursors are ids: short, printable, no NUL
        raise BadCursor("the cursor is not one this API gave out")
    return text


def decode_int_cursor(cursor: str) -> int:
    text = decode_cursor(cursor)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # a BIGINT id, ASCII digits only
        raise BadCursor("the cursor is not one this API gave out")
    return int(text)


def page_after(cursor: str | None, *, numeric: bool = True) -> Any:
    """The key a list resumes after (None for the first page); a cursor not given out is a 400."""
    if cursor is None:
        return None
    try:
        return decode_int_cursor(cursor) if numeric else decode_cursor(cursor)
    except BadCursor as exc:
        raise ProblemError(
            400, "Bad Request", str(exc), type_="https://benefits.example.vn/problems/bad-cursor"
        ) from None
