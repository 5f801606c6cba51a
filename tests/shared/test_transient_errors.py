"""An outage of the database or the bus is never a reason to dead-letter a message."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from shared.inbox import is_transient
from shared.messaging.ports import PublishFailed


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


class TestTransient:
    def test_connection_and_shutdown_errors_are_transient(self):
        assert is_transient(ConnectionRefusedError())
        assert is_transient(
            OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        )
        assert is_transient(DBAPIError("SELECT 1", {}, _PgError("57P01")))  # admin shutdown
        assert is_transient(DBAPIError("SELECT 1", {}, _PgError("40001")))  # serialization failure
        assert is_transient(PublishFailed("broker unavailable"))

    def test_defects_of_the_message_are_not(self):
        assert not is_transient(ValueError("bad amount"))
        assert not is_transient(KeyError("beneficiary"))
        assert not is_transient(DBAPIError("INSERT", {}, _PgError("23505")))  # unique violation
        assert not is_transient(DBAPIError("INSERT", {}, _PgError("22001")))  # value too long

    def test_a_wrapped_outage_is_transient(self):
        try:
            try:
                raise ConnectionResetError()
            except ConnectionResetError as inner:
                raise RuntimeError("while applying") from inner
        except RuntimeError as outer:
            assert is_transient(outer)
