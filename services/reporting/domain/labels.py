"""Names shown to people, in Vietnamese and English."""

from __future__ import annotations

SCHEMES = {
    "PENSION": ("Lương hưu", "Pension"),
    "SI_ALLOWANCE": ("Trợ cấp BHXH hằng tháng", "Monthly social-insurance allowance"),
    "UNEMPLOYMENT": ("Trợ cấp thất nghiệp", "Unemployment benefit"),
    "VOCATIONAL_TRAINING": ("Hỗ trợ học nghề", "Vocational-training support"),
    "MERITORIOUS": ("Ưu đãi người có công", "Allowance for people with meritorious service"),
    "SOCIAL_PROTECTION": ("Bảo trợ xã hội", "Social-protection allowance"),
    "OVERSEAS_LABOUR": ("Hỗ trợ đi làm việc ở nước ngoài", "Overseas-labour support"),
}
AGENCIES = {
    "BHXH": ("Bảo hiểm xã hội tỉnh", "Provincial Social Insurance"),
    "DOLISA": (
        "Sở Lao động - Thương binh và Xã hội",
        "Department of Labour, Invalids and Social Affairs",
    ),
    "ESC": ("Trung tâm Dịch vụ việc làm", "Employment Service Centre"),
}
CHANNELS = {
    "OWN_ACCOUNT": ("Tài khoản cá nhân", "Own bank account"),
    "AUTHORISED_ACCOUNT": ("Tài khoản người được ủy quyền", "Authorised person's account"),
    "CASH_POST_OFFICE": ("Tiền mặt qua bưu điện", "Cash at the post office"),
}
AREA_TYPES = {
    "URBAN": ("Đô thị", "Urban"),
    "RURAL": ("Nông thôn", "Rural"),
    "UNKNOWN": ("Chưa xác định", "Unknown"),
}
NO_DISTRICT = ("Không thuộc cấp huyện", "No district")
UNKNOWN_PROVINCE = ("Chưa xác định", "Unknown")


def pair(table: dict[str, tuple[str, str]], code: str) -> tuple[str, str]:
    return table.get(code, (code, code))
