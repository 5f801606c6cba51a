"""Signed webhooks between the payout service and its counterparties (banks, the post office).

A counterparty signs `f"{timestamp}.".encode() + raw_body` with HMAC-SHA256 and the secret it
shares with us. Three headers travel with the body:

    X-Counterparty:         the bank's 6-digit BIN, or VNPOST
    X-Signature-Timestamp:  unix seconds when the body was signed
    X-Signature:            v1=<hex digest>   (several comma-separated during a secret rotation)

`verify` refuses a missing signature, a timestamp older (or further in the future) than the
tolerance, and a digest that does not match. Secrets come from configuration (counterparty ->
secret); in development a predictable `dev-secret-<counterparty>` stands in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

COUNTERPARTY_HEADER = "X-Counterparty"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
DEV_SECRET_PREFIX = "dev-secret-"

SignatureFailure = Literal["missing_signature", "stale_timestamp", "bad_signature"]


class SignatureError(Exception):
    """A webhook whose signature cannot be trusted; `reason` says why."""

    def __init__(self, reason: SignatureFailure) -> None:
        super().__init__(reason)
        self.reason: SignatureFailure = reason


def _digest(secret: str, timestamp: int, raw_body: bytes) -> str:
    message = f"{timestamp}.".encode() + raw_body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The `X-Signature` header value for this body: `v1=<hex digest>`."""
    return f"{SCHEME}={_digest(secret, int(timestamp), raw_body)}"


def signed_headers(
    counterparty: str, secret: str, raw_body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers a counterparty sends with `raw_body`."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        COUNTERPARTY_HEADER: counterparty,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, raw_body),
    }


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts and on Starlette headers."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    value = headers.get(lowered)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _as_unix(now: datetime | float | int) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    return float(now)


def verify(
    secret: str,
    headers: Mapping[str, str],
    raw_body: bytes,
    now: datetime | float | int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Return if `raw_body` was signed with `secret` within the tolerance, else raise
    SignatureError. `now` is an aware datetime or unix seconds."""
    signature = header(headers, SIGNATURE_HEADER)
    timestamp_text = header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp_text:
        raise SignatureError("missing_signature")
    try:
        timestamp = int(timestamp_text.strip())
    except ValueError:
        raise SignatureError("bad_signature") from None
    if abs(_as_unix(now) - timestamp) > tolerance_seconds:
        raise SignatureError("stale_timestamp")
    expected = _digest(secret, timestamp, raw_body)
    matched = False
    for part in signature.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected.encode()):
            matched = True
    if not matched:
        raise SignatureError("bad_signature")


def dev_secret(counterparty: str) -> str:
    return f"{DEV_SECRET_PREFIX}{counterparty}"


def secret_for(
    counterparty: str,
    secrets: Mapping[str, str] | None,
    *,
    allow_dev_default: bool = True,
) -> str:
    """The configured secret for `counterparty`; the development default when none is set and
    defaults are allowed (refused outside development)."""
    if secrets:
        secret = secrets.get(counterparty)
        if secret:
            return secret
    if not allow_dev_default:
        raise LookupError(f"no webhook secret configured for counterparty {counterparty}")
    return dev_secret(counterparty)


def parse_secrets(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """Secrets from configuration: a JSON object (env var) or a mapping."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    loaded = json.loads(value)
    if not isinstance(loaded, dict):
        raise ValueError("webhook secrets must be a JSON object: counterparty -> secret")
    return {str(k): str(v) for k, v in loaded.items()}
