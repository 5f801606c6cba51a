"""The console's tests use payout's fixtures (a bank sandbox calling back a payout API on
PostgreSQL and Kafka)."""

from tests.payout.conftest import api_port, payout, sandbox, sandbox_server

__all__ = ["api_port", "payout", "sandbox", "sandbox_server"]
