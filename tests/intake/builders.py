"""Valid test data for intake: citizens with consistent CCCDs, claims, roll rows."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date
from typing import Any

_counter = itertools.count(1)
_rng = random.Random()

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu", "Hữu", "Ngọc"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Đức", "Hà", "Hạnh", "Lâm", "Ánh", "Tùng"]
COMMUNE_2023 = "08707"  # Phường Tích Sơn, Vĩnh Yên, in the list of 2023-05-07
RURAL_2023 = "08731"  # Xã Thanh Trù
LIST_2023 = "2023-05-07"
VIETCOMBANK = "970436"


def cccd(dob: date, female: bool = False, province: str = "026") -> str:
    century_digit = (dob.year // 100 - 19) * 2 + (1 if female else 0)
    serial = f"{_rng.randrange(10**6):06d}"
    return f"{province}{century_digit}{dob.year % 100:02d}{serial}"


def name() -> str:
    return f"{_rng.choice(SURNAMES)} {_rng.choice(MIDDLE)} {_rng.choice(GIVEN)}"


def si_number() -> str:
    return f"26{_rng.randrange(10**8):08d}"


def account() -> str:
    return f"{_rng.randrange(10**12):012d}"


def dossier() -> str:
    return f"G22.99-{uuid.uuid4().hex[:12]}"


def claim(
    scheme: str = "UNEMPLOYMENT", *, dob: date | None = None, **overrides: Any
) -> dict[str, Any]:
    dob = dob or date(1985 + next(_counter) % 15, 4, 12)
    body: dict[str, Any] = {
        "portal_dossier_id": dossier(),
        "scheme": scheme,
        "applicant": {
            "national_id": cccd(dob),
            "full_name": name(),
            "date_of_birth": dob.isoformat(),
            "si_number": si_number(),
        },
        "address": {"commune_code": COMMUNE_2023, "list_date": LIST_2023},
        "payment": {"method": "OWN_ACCOUNT", "bank_bin": VIETCOMBANK, "account_number": account()},
    }
    body.update(overrides)
    return body


def unemployment_approval(decision_number: str | None = None, **overrides: Any) -> dict[str, Any]:
    # 60% of 8,000,000 = 4,800,000 (under region II's cap of 20,800,000); 50 months -> 4 months.
    body = {
        "outcome": "APPROVED",
        "agency": "BHXH",
        "decision_number": decision_number or f"QD-{uuid.uuid4().hex[:8]}",
        "amount_per_installment": 4_800_000,
        "schedule": {"kind": "FIXED_MONTHLY", "start_period": "2023-05", "installments": 4},
        "average_salary": 8_000_000,
        "contribution_months": 50,
        "region": "II",
    }
    body.update(overrides)
    return body


def roll_row(scheme: str = "PENSION", **overrides: Any) -> dict[str, Any]:
    dob = date(1950 + next(_counter) % 10, 1, 15)
    row = {
        "national_id": cccd(dob, female=bool(next(_counter) % 2)),
        "full_name": name(),
        "date_of_birth": dob.isoformat(),
        "si_number": si_number() if scheme in ("PENSION", "SI_ALLOWANCE") else None,
        "commune_code": COMMUNE_2023,
        "commune_list_date": LIST_2023,
        "scheme": scheme,
        "decision_number": f"{scheme[:3]}-{uuid.uuid4().hex[:10]}",
        "amount_per_installment": 3_500_000,
        "start_period": "2020-01",
        "payment_method": "OWN_ACCOUNT",
        "bank_bin": VIETCOMBANK,
        "account_number": account(),
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}
