"""Checks shared by every channel's `parse_callback`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.webhook_signing import (
    COUNTERPARTY_HEADER,
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    header,
    verify,
)

from .base import CallbackRejected


def authenticate_callback(
    counterparty: str,
    secret: str,
    headers: Mapping[str, str],
    raw_body: bytes,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise CallbackRejected unless the callback is signed with this counterparty's secret and
    names this counterparty."""
    if not header(headers, SIGNATURE_HEADER) or not header(headers, TIMESTAMP_HEADER):
        raise CallbackRejected("missing_signature")
    claimed = header(headers, COUNTERPARTY_HEADER)
    if claimed is None or claimed.strip() != counterparty:
        raise CallbackRejected("wrong_counterparty", "callback is for another counterparty")
    try:
        verify(secret, headers, raw_body, now, tolerance_seconds)
    except SignatureError as exc:
        raise CallbackRejected(exc.reason) from None
