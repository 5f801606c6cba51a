"""Breakdowns as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the diacritics)
and as XLSX workbooks. Amounts stay whole VND."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from services.reporting.domain.disclosure import THRESHOLD
from services.reporting.domain.figures import percent
from services.reporting.service_layer.queries import Breakdown

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COLUMNS: list[tuple[str, str, str]] = [
    ("people_paid", "Số người được chi trả", "People paid"),
    ("people_cashless", "Số người nhận không dùng tiền mặt", "People paid without cash"),
    ("cashless_share_percent", "Tỷ lệ không dùng tiền mặt (%)", "Cashless share (%)"),
    ("paid_count", "Số khoản đã chi", "Installments paid"),
    ("paid_amount", "Số tiền đã chi (đồng)", "Amount paid (VND)"),
    ("cashless_amount", "Số tiền chi không dùng tiền mặt (đồng)", "Amount paid without cash (VND)"),
    ("pending_count", "Số khoản đang chờ", "Installments pending"),
    ("failed_count", "Số khoản thất bại", "Installments failed"),
    ("returned_count", "Số khoản bị trả lại", "Installments returned"),
    ("claims_received", "Hồ sơ tiếp nhận", "Claims received"),
    ("decisions_approved", "Quyết định hưởng", "Approved decisions"),
    ("decisions_rejected", "Quyết định từ chối", "Rejected decisions"),
]
HEAD = {"vi": ("Mã", "Tên"), "en": ("Code", "Name")}
TOTAL = {"vi": "Tổng cộng", "en": "Total"}
# A hidden cell leaves its figures empty and says why in a last column.
NOTE = {"vi": "Ghi chú", "en": "Note"}
SUPPRESSED = {
    "vi": "Ẩn số liệu để bảo vệ ô có dưới {n} người",
    "en": "Hidden to protect a cell of fewer than {n} people",
}


def _values(figures, suppressed: bool = False) -> list[Any]:
    if suppressed:
        return [None] * len(COLUMNS)
    out: list[Any] = []
    for name, _, _ in COLUMNS:
        if name == "cashless_share_percent":
            out.append(percent(figures.cashless_share))
        else:
            out.append(getattr(figures, name))
    return out


def table(breakdown: Breakdown, lang: str) -> tuple[list[str], list[list[Any]]]:
    code, name = HEAD[lang]
    header = [code, name] + [vi if lang == "vi" else en for _, vi, en in COLUMNS]
    rows = [
        [r.code, r.name_vi if lang == "vi" else r.name_en, *_values(r.figures, r.suppressed)]
        for r in breakdown.rows
    ]
    rows.append(["", TOTAL[lang], *_values(breakdown.total, breakdown.total_suppressed)])
    if breakdown.suppression:
        header.append(NOTE[lang])
        flags = [r.suppressed for r in breakdown.rows] + [breakdown.total_suppressed]
        for row, hidden in zip(rows, flags, strict=True):
            row.append(SUPPRESSED[lang].format(n=THRESHOLD) if hidden else None)
    return header, rows


def to_csv(breakdown: Breakdown, lang: str = "vi") -> bytes:
    header, rows = table(breakdown, lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(breakdown: Breakdown, lang: str = "vi") -> bytes:
    header, rows = table(breakdown, lang)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = breakdown.dimension[:31]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for index, (name, _, _) in enumerate(COLUMNS, start=3):
        fmt = "0.00" if name == "cashless_share_percent" else "#,##0"
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            cell.number_format = fmt
    sheet.column_dimensions["B"].width = 36
    sheet.freeze_panes = "C2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
