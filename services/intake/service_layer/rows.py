"""Reading one uploaded row (text cells) into checked values, naming each offending column."""

from __future__ import annotations

import re
from datetime import date, datetime

from services.intake.domain import payment_methods as pm
from services.intake.domain.errors import FieldError
from shared.events import contracts
from shared.events.contracts import max_length_of

METHOD_COLUMNS = [
    "payment_method",
    "bank_bin",
    "account_number",
    "cash_reason",
    "rep_national_id",
    "rep_full_name",
    "rep_relationship",
    "rep_power_of_attorney_ref",
    "rep_valid_from",
    "rep_valid_until",
]
# What the database columns hold, and for what goes into an event what its contract allows; a
# longer cell is refused with its row, never truncated.
MAX_LENGTHS = {
    "national_id": 12,
    "rep_national_id": 12,
    "si_number": 10,
    "scheme": 30,
    "payment_method": 30,
    "rep_relationship": 100,
    "rep_power_of_attorney_ref": 100,
    **{
        column: max_length_of(limited)
        for column, limited in {
            "commune_code": contracts.CommuneCode,
            "decision_number": contracts.DecisionNumber,
            "start_period": contracts.Period,
            "bank_bin": contracts.BankBin,
            "account_number": contracts.AccountNumber,
            "cash_reason": contracts.CashReason,
            "full_name": contracts.PersonName,
            "rep_full_name": contracts.PersonName,
        }.items()
    },
}
Day = date  # `RowReader.date` hides the type inside the class
_GROUPED = re.compile(r"^\d{1,3}([.,\s]\d{3})+$")
# The representative's fields in a row, and where the domain's pointers name them.
_REP_POINTERS = {
    "/representative/national_id": "rep_national_id",
    "/representative/full_name": "rep_full_name",
    "/representative/relationship": "rep_relationship",
    "/representative/power_of_attorney_ref": "rep_power_of_attorney_ref",
    "/representative/valid_from": "rep_valid_from",
    "/representative/valid_until": "rep_valid_until",
    "/representative": "payment_method",
    "/method": "payment_method",
}


class RowReader:
    """Collects errors while reading the cells of one row. `prefix` is the pointer of the row
    ("" for a file row, whose pointers name the column; "/rows/<i>" for a JSON row)."""

    def __init__(self, cells: dict[str, str | None], prefix: str) -> None:
        self.cells = cells
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def bad(self, column: str, detail: str) -> None:
        self.errors.append(FieldError(f"{self.prefix}/{column}", detail))

    def text(self, column: str, required: bool = True) -> str | None:
        value = self.cells.get(column)
        if value is None and required:
            self.bad(column, "is required")
        limit = MAX_LENGTHS.get(column)
        if value is not None and limit is not None and len(value) > limit:
            self.bad(column, f"is longer than {limit} characters")
            return None
        return value

    def date(self, column: str, required: bool = True) -> date | None:
        value = self.text(column, required)
        if value is None:
            return None
        try:
            return (
                date.fromisoformat(value)
                if len(value) == 10
                else datetime.fromisoformat(value).date()
            )
        except ValueError:
            pass
        for fmt in ("%d/%m/%Y", "%d-%m-%Y"):
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                continue
        self.bad(column, "must be a date (YYYY-MM-DD or DD/MM/YYYY)")
        return None

    def amount(self, column: str) -> int | None:
        value = self.text(column)
        if value is None:
            return None
        if value.isdigit():
            amount = int(value)
        elif _GROUPED.match(value):
            amount = int(re.sub(r"[.,\s]", "", value))
        else:
            self.bad(column, "must be a whole number of VND")
            return None
        if amount <= 0:
            self.bad(column, "must be positive")
            return None
        if amount > contracts.MAX_VND:
            self.bad(column, f"must be at most {contracts.MAX_VND} VND")
            return None
        return amount

    def method(
        self, today: Day, beneficiary_national_id: str | None, required: bool
    ) -> pm.MethodSpec | None:
        """The payment-method columns, or None when they are all empty (and not required)."""
        before = len(self.errors)
        if all(self.cells.get(c) is None for c in METHOD_COLUMNS):
            if required:
                self.bad("payment_method", "is required")
            return None
        kind = self.text("payment_method")
        if kind is None:
            return None
        kind = kind.upper()
        rep = None
        if any(self.cells.get(c) is not None for c in METHOD_COLUMNS[4:]):
            valid_from = self.date("rep_valid_from")
            valid_until = self.date("rep_valid_until", required=False)
            rep = pm.RepresentativeSpec(
                national_id=self.text("rep_national_id", required=False) or "",
                full_name=self.text("rep_full_name", required=False) or "",
                relationship=self.text("rep_relationship", required=False) or "",
                power_of_attorney_ref=self.text("rep_power_of_attorney_ref", required=False) or "",
                valid_from=valid_from or date.min,
                valid_until=valid_until,
            )
            if valid_from is None:
                return None
        bank_bin = self.text("bank_bin", required=False)
        account_number = self.text("account_number", required=False)
        cash_reason = self.text("cash_reason", required=False)
        if len(self.errors) > before:
            return None
        spec = pm.normalise(pm.MethodSpec(kind, bank_bin, account_number, rep, cash_reason))
        for error in pm.method_problems(spec, today, beneficiary_national_id):
            column = _REP_POINTERS.get(error.pointer, error.pointer.lstrip("/"))
            self.bad(column, error.detail)
        return spec
