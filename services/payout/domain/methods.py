"""Whether a beneficiary's current payment method may pay money sent on a given day, else why
the installment waits, and where the money goes (its counterparty).

Each rule is written twice, side by side: once in Python for one method at a time (a released
hold), once as a SQLAlchemy expression for set-based statements (a cycle of 100,000). The two
MUST agree; tests/payout/test_methods.py evaluates both on the same rows, on SQLite and
PostgreSQL. The expressions take the payment-method columns as an argument (a table or an
alias, such as `pm`), so this module knows no table of the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_
from sqlalchemy.sql.expression import ColumnClause, FromClause

from services.payout.domain import model

# The reason a method that is not verified gives the installment it holds.
_HOLD_BY_STATUS = {
    model.METHOD_PENDING: model.HOLD_PENDING_VERIFICATION,
    model.METHOD_FAILED: model.HOLD_METHOD_FAILED,
    model.METHOD_FLAGGED: model.HOLD_METHOD_FLAGGED,
}


def method_usable(method: Mapping[str, Any] | None, pay_date: date) -> tuple[bool, str | None]:
    """Whether the current method may pay money sent on `pay_date` (a Vietnam date), else why
    the installment waits. A representative pays only while the authorisation is valid on that
    day. Twin of `usable` and `hold_reason`."""
    if method is None:
        return False, model.HOLD_NO_METHOD
    status = method["status"]
    if status != model.METHOD_VERIFIED:
        return False, _HOLD_BY_STATUS.get(status, model.HOLD_PENDING_VERIFICATION)
    if method["method"] == model.AUTHORISED_ACCOUNT:
        valid_from, valid_until = (
            method["representative_valid_from"],
            method["representative_valid_until"],
        )
        if (valid_from is not None and valid_from > pay_date) or (
            valid_until is not None and valid_until < pay_date
        ):
            return False, model.HOLD_AUTHORISATION
    return True, None


def counterparty_of(method: Mapping[str, Any]) -> str:
    """Who pays with this method: the post office for cash, else the account's bank. Twin of
    `counterparty`."""
    return model.VNPOST if method["method"] == model.CASH_POST_OFFICE else method["bank_bin"]


# -- the SQL twins ------------------------------------------------------------------------------


def usable(pm: FromClause, pay_date: ColumnElement[Any] | ColumnClause[Any]) -> ColumnElement[bool]:
    """SQL: the method `pm` may pay money sent on `pay_date`; NULL (not true) where the person
    has no method. Twin of `method_usable`'s verdict."""
    c = pm.c
    authorised_that_day = and_(
        or_(c.representative_valid_from.is_(None), c.representative_valid_from <= pay_date),
        or_(c.representative_valid_until.is_(None), c.representative_valid_until >= pay_date),
    )
    return and_(
        c.status == model.METHOD_VERIFIED,
        or_(c.method != model.AUTHORISED_ACCOUNT, authorised_that_day),
    )


def hold_reason(pm: FromClause) -> ColumnElement[str]:
    """SQL: why the method `pm` may not pay, where `usable` is not true. Twin of
    `method_usable`'s reason."""
    c = pm.c
    return case(
        (c.beneficiary_id.is_(None), model.HOLD_NO_METHOD),
        *((c.status == status, reason) for status, reason in _HOLD_BY_STATUS.items()),
        else_=model.HOLD_AUTHORISATION,
    )


def counterparty(pm: FromClause) -> ColumnElement[str]:
    """SQL twin of `counterparty_of`."""
    return case((pm.c.method == model.CASH_POST_OFFICE, model.VNPOST), else_=pm.c.bank_bin)
