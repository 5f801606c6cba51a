"""Who a person is: the CCCD citizen id, names, social-insurance numbers, and their masking."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from shared.vn_text import nfc

# Province codes of the CCCD (Circular 07/2016/TT-BCA): the 63 provinces, 001 to 096.
PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}

_CCCD = re.compile(r"^\d{12}$")
_SI_NUMBER = re.compile(r"^\d{10}$")
_NAME_EXTRA = frozenset(" '-.")


def century_and_sex(digit: int) -> tuple[int, str]:
    """The CCCD's 4th digit: 0/1 the 1900s, 2/3 the 2000s, 4/5 the 2100s ...; even male, odd female."""
    return 1900 + (digit // 2) * 100, "MALE" if digit % 2 == 0 else "FEMALE"


def cccd_problems(national_id: str, date_of_birth: date | None = None) -> list[str]:
    """Why `national_id` is not a valid CCCD (for this date of birth); empty when it is."""
    if not isinstance(national_id, str) or not _CCCD.match(national_id):
        return ["must be 12 digits"]
    problems = []
    if national_id[:3] not in PROVINCE_CODES:
        problems.append(f"province code {national_id[:3]} is not a province code")
    century, _ = century_and_sex(int(national_id[3]))
    if date_of_birth is not None:
        if century != date_of_birth.year // 100 * 100:
            problems.append("the century-and-sex digit does not match the date of birth's century")
        elif int(national_id[4:6]) != date_of_birth.year % 100:
            problems.append("the birth-year digits do not match the date of birth")
    return problems


def is_valid_cccd(national_id: str, date_of_birth: date | None = None) -> bool:
    return not cccd_problems(national_id, date_of_birth)


def sex_of(national_id: str) -> str:
    return century_and_sex(int(national_id[3]))[1]


def si_number_problems(si_number: str) -> list[str]:
    if not isinstance(si_number, str) or not _SI_NUMBER.match(si_number):
        return ["must be 10 digits"]
    return []


def normalise_name(full_name: str) -> str:
    """Stored in NFC with single spaces."""
    return nfc(full_name)


def name_problems(full_name: str) -> list[str]:
    name = normalise_name(full_name)
    if len(name) < 2:
        return ["is too short"]
    if len(name) > 120:
        return ["is too long (120 characters at most)"]
    for ch in name:
        if ch in _NAME_EXTRA:
            continue
        if not ch.isalpha() or unicodedata.category(ch) not in ("Ll", "Lu", "Lo", "Lt"):
            return ["may hold letters, spaces, apostrophes, hyphens and dots only"]
    return []


def date_of_birth_problems(date_of_birth: date, today: date) -> list[str]:
    if date_of_birth > today:
        return ["is in the future"]
    if date_of_birth.year < 1900:
        return ["is before 1900"]
    return []


def mask_national_id(national_id: str | None) -> str | None:
    """'026090001234' -> '026*******34': first 3 and last 2 digits."""
    if national_id is None:
        return None
    if len(national_id) <= 5:
        return "*" * len(national_id)
    return national_id[:3] + "*" * (len(national_id) - 5) + national_id[-2:]


def mask_account(account_number: str | None) -> str | None:
    """Only the last 4 digits."""
    if account_number is None:
        return None
    return "****" + account_number[-4:] if len(account_number) > 4 else "****"
