"""Field checks shared by claims and roll rows: the applicant and the address."""

from __future__ import annotations

from datetime import date

from services.intake.domain.errors import FieldError
from services.intake.domain.identity import (
    cccd_problems,
    date_of_birth_problems,
    name_problems,
    si_number_problems,
)
from services.intake.domain.schemes import needs_si_number
from shared.admin_units import find_unit, known_list_dates


def applicant_problems(
    national_id: str,
    full_name: str,
    date_of_birth: date,
    si_number: str | None,
    scheme: str,
    today: date,
    prefix: str = "",
) -> list[FieldError]:
    errors = [
        FieldError(f"{prefix}/date_of_birth", p)
        for p in date_of_birth_problems(date_of_birth, today)
    ]
    errors += [
        FieldError(f"{prefix}/national_id", p) for p in cccd_problems(national_id, date_of_birth)
    ]
    errors += [FieldError(f"{prefix}/full_name", p) for p in name_problems(full_name)]
    if si_number:
        errors += [FieldError(f"{prefix}/si_number", p) for p in si_number_problems(si_number)]
    elif needs_si_number(scheme):
        errors.append(
            FieldError(
                f"{prefix}/si_number",
                f"a 10-digit social-insurance number is required for {scheme}",
            )
        )
    return errors


def address_problems(
    commune_code: str,
    list_date: date,
    prefix: str = "",
    list_field: str = "list_date",
    code_field: str = "commune_code",
) -> list[FieldError]:
    if list_date not in known_list_dates():
        dates = ", ".join(d.isoformat() for d in known_list_dates())
        return [
            FieldError(
                f"{prefix}/{list_field}", f"no administrative list of that date (known: {dates})"
            )
        ]
    if find_unit(commune_code, list_date) is None:
        return [
            FieldError(
                f"{prefix}/{code_field}",
                f"no commune with that code in the list of {list_date.isoformat()}",
            )
        ]
    return []
