"""A bank and post-office sandbox: a real HTTP server that plays several Vietnamese banks (by
NAPAS BIN, JSON or ISO 20022 files) and the provincial post office, with signed outcome
callbacks, statements, a ledger of credits and injectable faults."""

from .app import create_app
from .config import SandboxSettings

__all__ = ["SandboxSettings", "create_app"]
