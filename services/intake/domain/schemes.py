"""Benefit schemes, the agency that decides each, and what each needs."""

from __future__ import annotations

from typing import get_args

from shared.events.contracts import Agency, Scheme

SCHEMES: tuple[str, ...] = get_args(Scheme)
AGENCIES: tuple[str, ...] = get_args(Agency)

AGENCY_OF: dict[str, str] = {
    "PENSION": "BHXH",
    "SI_ALLOWANCE": "BHXH",
    "UNEMPLOYMENT": "BHXH",
    "VOCATIONAL_TRAINING": "BHXH",
    "MERITORIOUS": "DOLISA",
    "SOCIAL_PROTECTION": "DOLISA",
    "OVERSEAS_LABOUR": "ESC",
}

# Schemes paid by social insurance: the applicant must give a 10-digit SI number.
NEEDS_SI_NUMBER = frozenset({"PENSION", "SI_ALLOWANCE", "UNEMPLOYMENT", "VOCATIONAL_TRAINING"})

# The schemes whose existing monthly beneficiaries are loaded as a roll.
ROLL_SCHEMES = frozenset({"PENSION", "SI_ALLOWANCE", "MERITORIOUS", "SOCIAL_PROTECTION"})


def agency_for(scheme: str) -> str:
    return AGENCY_OF[scheme]


def needs_si_number(scheme: str) -> bool:
    return scheme in NEEDS_SI_NUMBER
