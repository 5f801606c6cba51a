"""Payment methods: own account, an authorised representative's account, or cash at the post
office (only with a recorded reason). A bank account is pending until the bank confirms it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from services.intake.domain.errors import FieldError
from services.intake.domain.identity import cccd_problems, name_problems, normalise_name
from shared.banks import find_bank

OWN_ACCOUNT = "OWN_ACCOUNT"
AUTHORISED_ACCOUNT = "AUTHORISED_ACCOUNT"
CASH_POST_OFFICE = "CASH_POST_OFFICE"
METHOD_KINDS = (OWN_ACCOUNT, AUTHORISED_ACCOUNT, CASH_POST_OFFICE)

PENDING_VERIFICATION = "PENDING_VERIFICATION"
VERIFIED = "VERIFIED"
FAILED = "FAILED"
FLAGGED = "FLAGGED"  # a payment failed for good: the agency must fix the account
EXPIRED = "EXPIRED"  # shown, not stored: an authorisation past its validity
NOT_YET_VALID = "NOT_YET_VALID"

_ACCOUNT = re.compile(r"^\d{6,19}$")


@dataclass(frozen=True, slots=True)
class RepresentativeSpec:
    national_id: str
    full_name: str
    relationship: str
    power_of_attorney_ref: str
    valid_from: date
    valid_until: date | None = None


@dataclass(frozen=True, slots=True)
class MethodSpec:
    kind: str
    bank_bin: str | None = None
    account_number: str | None = None
    representative: RepresentativeSpec | None = None
    cash_reason: str | None = None

    def holder_name(self, beneficiary_name: str) -> str | None:
        """The name the bank must show for the account."""
        if self.kind == AUTHORISED_ACCOUNT and self.representative is not None:
            return self.representative.full_name
        if self.kind == OWN_ACCOUNT:
            return beneficiary_name
        return None

    def initial_status(self) -> str:
        # Cash needs no bank to confirm it; an account waits for the bank's name inquiry.
        return VERIFIED if self.kind == CASH_POST_OFFICE else PENDING_VERIFICATION


def normalise(spec: MethodSpec) -> MethodSpec:
    rep = spec.representative
    if rep is not None:
        rep = RepresentativeSpec(
            rep.national_id,
            normalise_name(rep.full_name),
            rep.relationship.strip(),
            rep.power_of_attorney_ref.strip(),
            rep.valid_from,
            rep.valid_until,
        )
    return MethodSpec(
        spec.kind,
        spec.bank_bin,
        spec.account_number,
        rep,
        spec.cash_reason.strip() if spec.cash_reason else None,
    )


def method_problems(
    spec: MethodSpec, today: date, beneficiary_national_id: str | None = None, prefix: str = ""
) -> list[FieldError]:
    errors: list[FieldError] = []

    def bad(field: str, detail: str) -> None:
        errors.append(FieldError(f"{prefix}/{field}", detail))

    if spec.kind not in METHOD_KINDS:
        bad("method", f"must be one of {', '.join(METHOD_KINDS)}")
        return errors
    if spec.kind in (OWN_ACCOUNT, AUTHORISED_ACCOUNT):
        if not spec.bank_bin:
            bad("bank_bin", "is required for a bank account")
        elif find_bank(spec.bank_bin) is None:
            bad("bank_bin", "is not a known bank BIN")
        if not spec.account_number:
            bad("account_number", "is required for a bank account")
        elif not _ACCOUNT.match(spec.account_number):
            bad("account_number", "must be 6 to 19 digits")
        if spec.cash_reason:
            bad("cash_reason", "applies to cash payment only")
    else:
        if spec.bank_bin or spec.account_number:
            bad(
                "account_number" if spec.account_number else "bank_bin",
                "cash payment has no bank account",
            )
        if not spec.cash_reason or len(spec.cash_reason.strip()) < 5:
            bad(
                "cash_reason",
                "cash payment needs a recorded reason (cannot transact and has no representative)",
            )
    if spec.kind == AUTHORISED_ACCOUNT:
        rep = spec.representative
        if rep is None:
            bad("representative", "an authorised account needs the representative")
        else:
            errors.extend(
                representative_problems(
                    rep, today, beneficiary_national_id, f"{prefix}/representative"
                )
            )
    elif spec.representative is not None:
        bad("representative", "only an authorised account has a representative")
    return errors


def representative_problems(
    rep: RepresentativeSpec, today: date, beneficiary_national_id: str | None, prefix: str
) -> list[FieldError]:
    errors = [FieldError(f"{prefix}/national_id", p) for p in cccd_problems(rep.national_id)]
    if beneficiary_national_id and rep.national_id == beneficiary_national_id:
        errors.append(
            FieldError(f"{prefix}/national_id", "the representative cannot be the beneficiary")
        )
    errors += [FieldError(f"{prefix}/full_name", p) for p in name_problems(rep.full_name)]
    if not rep.relationship.strip():
        errors.append(FieldError(f"{prefix}/relationship", "is required"))
    if not rep.power_of_attorney_ref.strip():
        errors.append(FieldError(f"{prefix}/power_of_attorney_ref", "is required"))
    if rep.valid_until is not None:
        if rep.valid_until < rep.valid_from:
            errors.append(FieldError(f"{prefix}/valid_until", "is before valid_from"))
        elif rep.valid_until < today:
            errors.append(
                FieldError(f"{prefix}/valid_until", "the authorisation has already expired")
            )
    return errors


def authorisation_state(rep: RepresentativeSpec | None, on: date) -> str:
    """VALID, NOT_YET_VALID or EXPIRED on the given (Vietnam) date."""
    if rep is None:
        return "VALID"
    if on < rep.valid_from:
        return NOT_YET_VALID
    if rep.valid_until is not None and on > rep.valid_until:
        return EXPIRED
    return "VALID"


def effective_status(kind: str, status: str, rep: RepresentativeSpec | None, on: date) -> str:
    """The status callers see: an authorisation outside its validity is not used, whatever the bank said."""
    if kind == AUTHORISED_ACCOUNT:
        state = authorisation_state(rep, on)
        if state in (EXPIRED, NOT_YET_VALID):
            return state
    return status


def usable_for_payment(kind: str, status: str, rep: RepresentativeSpec | None, on: date) -> bool:
    return effective_status(kind, status, rep, on) == VERIFIED
