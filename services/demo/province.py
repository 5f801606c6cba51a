"""A realistic Vĩnh Phúc, generated deterministically from a seed.

People on the monthly rolls across schemes and communes, with realistic amounts; account
collection that rises month by month through 2023 (faster in urban wards and townships), so the
dashboard tells the story of the 25% target; authorised representatives and cash cases; and the
article's unemployment claims for Q1 2023, scaled with the province.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from shared.admin_units import LIST_2023, AdminUnit, units

FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Vũ",
    "Đỗ",
    "Bùi",
    "Đặng",
    "Ngô",
    "Dương",
    "Lý",
    "Phan",
    "Đinh",
]
MIDDLE_MALE = ["Văn", "Đức", "Hữu", "Minh", "Quang", "Xuân", "Đình", "Công"]
MIDDLE_FEMALE = ["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Minh"]
GIVEN_MALE = [
    "Hùng",
    "Dũng",
    "Cường",
    "Sơn",
    "Long",
    "Nam",
    "Tuấn",
    "Quyết",
    "Thắng",
    "Đạt",
    "Bình",
    "Hải",
]
GIVEN_FEMALE = [
    "Lan",
    "Hoa",
    "Mai",
    "Hạnh",
    "Thảo",
    "Trang",
    "Yến",
    "Ánh",
    "Phương",
    "Hà",
    "Nga",
    "Huệ",
]
URBAN_BANKS = ["970436", "970415", "970418", "970405", "970407", "970422", "970432"]
RURAL_BANKS = [
    "970405",
    "970405",
    "970405",
    "970418",
    "970415",
    "970436",
]  # Agribank reaches the villages
# The monthly rolls in the national proportions: about 3.3 million social-insurance payees (nine
# in ten of them pensioners), about as many on social protection, about 1.2 million people with
# meritorious service.
ROLL_SCHEMES = [
    ("PENSION", 0.38),
    ("SI_ALLOWANCE", 0.05),
    ("MERITORIOUS", 0.14),
    ("SOCIAL_PROTECTION", 0.43),
]
AGENCY = {
    "PENSION": "BHXH",
    "SI_ALLOWANCE": "BHXH",
    "UNEMPLOYMENT": "BHXH",
    "VOCATIONAL_TRAINING": "BHXH",
    "MERITORIOUS": "DOLISA",
    "SOCIAL_PROTECTION": "DOLISA",
    "OVERSEAS_LABOUR": "ESC",
}
# By December 2023, the share of each group that has given an account (urban BHXH schemes pass 25%).
COVERAGE_BY_DECEMBER = {
    ("URBAN", "BHXH"): 0.34,
    ("RURAL", "BHXH"): 0.16,
    ("URBAN", "DOLISA"): 0.22,
    ("RURAL", "DOLISA"): 0.09,
}
COVERAGE_BY_JANUARY = 0.35  # of the December share, already collected before the year started


@dataclass(frozen=True, slots=True)
class Person:
    national_id: str
    full_name: str
    date_of_birth: date
    male: bool
    si_number: str | None
    commune: AdminUnit


@dataclass(frozen=True, slots=True)
class Account:
    bank_bin: str
    account_number: str
    holder_name: str  # as the bank knows it
    status: str = "ACTIVE"  # ACTIVE, CLOSED, BLOCKED, DECEASED at the bank


@dataclass(frozen=True, slots=True)
class Representative:
    person: Person
    relationship: str
    power_of_attorney_ref: str
    valid_from: date
    valid_until: date


@dataclass(frozen=True, slots=True)
class Collected:
    """A payment method collected in a given month."""

    month: str  # YYYY-MM: when the locality sends it in
    method: str  # OWN_ACCOUNT, AUTHORISED_ACCOUNT, CASH_POST_OFFICE
    account: Account | None = None
    representative: Representative | None = None
    cash_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RollEntry:
    person: Person
    scheme: str
    agency: str
    decision_number: str
    monthly_amount: int
    start_period: str
    methods: tuple[Collected, ...]


@dataclass(frozen=True, slots=True)
class UnemploymentClaim:
    dossier_id: str
    person: Person
    filed_month: str
    average_salary: int
    contribution_months: int
    region: str
    approved: bool
    account: Account


@dataclass
class Province:
    seed: int
    roll: list[RollEntry] = field(default_factory=list)
    unemployment: list[UnemploymentClaim] = field(default_factory=list)

    def accounts(self) -> list[Account]:
        """Every account the banks hold, for seeding the bank sandbox."""
        found: dict[tuple[str, str], Account] = {}
        for entry in self.roll:
            for collected in entry.methods:
                if collected.account:
                    found[(collected.account.bank_bin, collected.account.account_number)] = (
                        collected.account
                    )
        for claim in self.unemployment:
            found[(claim.account.bank_bin, claim.account.account_number)] = claim.account
        return list(found.values())


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used_ids: set[str] = set()
        self.communes = units(LIST_2023)
        # Wards and townships are denser: weight them up.
        self.weights = [3.0 if unit.urban else 1.0 for unit in self.communes]

    def commune(self) -> AdminUnit:
        return self.rng.choices(self.communes, self.weights)[0]

    def person(
        self, born_from: int, born_to: int, needs_si: bool, commune: AdminUnit | None = None
    ) -> Person:
        rng = self.rng
        male = rng.random() < 0.5
        year = rng.randint(born_from, born_to)
        born = date(year, rng.randint(1, 12), rng.randint(1, 28))
        century = (year // 100) - 19  # 1900s -> 0, 2000s -> 1
        sex_digit = century * 2 + (0 if male else 1)
        while True:
            national_id = f"026{sex_digit}{year % 100:02d}{rng.randint(0, 999999):06d}"
            if national_id not in self.used_ids:
                self.used_ids.add(national_id)
                break
        middle = rng.choice(MIDDLE_MALE if male else MIDDLE_FEMALE)
        given = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
        name = f"{rng.choice(FAMILY)} {middle} {given}"
        si_number = f"26{rng.randint(0, 99_999_999):08d}" if needs_si else None
        return Person(national_id, name, born, male, si_number, commune or self.commune())

    def account(self, holder: Person, urban: bool) -> Account:
        rng = self.rng
        bank_bin = rng.choice(URBAN_BANKS if urban else RURAL_BANKS)
        number = "".join(str(rng.randint(0, 9)) for _ in range(rng.choice((10, 12, 13))))
        roll = rng.random()
        status = "CLOSED" if roll < 0.004 else "BLOCKED" if roll < 0.006 else "ACTIVE"
        return Account(bank_bin, number, holder.full_name, status)


def _months(year: int) -> list[str]:
    return [f"{year}-{m:02d}" for m in range(1, 13)]


def _round_to(value: float, step: int) -> int:
    return round(value / step) * step


def generate(
    seed: int = 2023, beneficiaries: int = 2_000, unemployment_scale: float = 0.05, year: int = 2023
) -> Province:
    """`beneficiaries` people on the monthly rolls; unemployment claims at `unemployment_scale`
    of the article's Q1 2023 figures (2,203 applications, 1,533 decisions)."""
    g = _Generator(seed)
    rng = g.rng
    province = Province(seed)
    months = _months(year)
    schemes, weights = zip(*ROLL_SCHEMES, strict=True)
    for n in range(beneficiaries):
        scheme = rng.choices(schemes, weights)[0]
        agency = AGENCY[scheme]
        elderly = scheme in ("PENSION", "MERITORIOUS")
        person = g.person(1930, 1965 if elderly else 2005, needs_si=agency == "BHXH")
        urban = person.commune.urban
        amount = {
            "PENSION": _round_to(rng.lognormvariate(15.3, 0.45), 1_000),
            "SI_ALLOWANCE": _round_to(rng.uniform(1_500_000, 3_500_000), 1_000),
            "MERITORIOUS": rng.choice([1_624_000, 2_055_000, 2_789_000, 3_600_000]),
            "SOCIAL_PROTECTION": 360_000 * rng.choice([1, 1, 1.5, 2, 2.5, 3]),
        }[scheme]
        amount = max(int(amount), 360_000)
        methods = [
            Collected(
                month=f"{year - 1}-12",
                method="CASH_POST_OFFICE",
                cash_reason="receives at the commune post office",
            )
        ]
        share = COVERAGE_BY_DECEMBER[("URBAN" if urban else "RURAL", agency)]
        if rng.random() < share:
            # Collected some month of the year, a third before it started.
            month = (
                f"{year - 1}-12" if rng.random() < COVERAGE_BY_JANUARY else rng.choice(months[:-1])
            )
            if agency == "DOLISA" and rng.random() < 0.45:
                rep = g.person(1960, 2000, needs_si=False, commune=person.commune)
                representative = Representative(
                    rep,
                    rng.choice(["con", "vợ", "chồng", "cháu"]),
                    f"UQ-{seed}-{n:06d}",
                    date(year - 1, 12, 1),
                    date(year + 5, 12, 31),
                )
                methods = [
                    Collected(month, "AUTHORISED_ACCOUNT", g.account(rep, urban), representative)
                ]
            else:
                methods = [Collected(month, "OWN_ACCOUNT", g.account(person, urban))]
        elif rng.random() < 0.5:
            methods = [
                Collected(
                    f"{year - 1}-12",
                    "CASH_POST_OFFICE",
                    cash_reason="cannot transact and has no representative",
                )
            ]
        province.roll.append(
            RollEntry(
                person,
                scheme,
                agency,
                f"QD-{agency}-{seed}-{n:07d}",
                amount,
                f"{year - 1}-12",
                tuple(methods),
            )
        )

    applications = max(1, round(2_203 * unemployment_scale))
    decisions = max(1, round(1_533 * unemployment_scale))
    for n in range(applications):
        person = g.person(1975, 2002, needs_si=True)
        region = "II" if person.commune.urban else "III"
        province.unemployment.append(
            UnemploymentClaim(
                dossier_id=f"G22.{year}.{seed}.{n:06d}",
                person=person,
                filed_month=rng.choice(months[:3]),
                average_salary=_round_to(rng.uniform(5_000_000, 12_000_000), 1_000),
                contribution_months=rng.choice([14, 24, 30, 40, 55, 70, 100]),
                region=region,
                approved=n < decisions,
                account=g.account(person, person.commune.urban),
            )
        )
    return province
