"""Reading uploaded tables (CSV, XLSX, JSON rows) into rows of text cells, and writing CSV.

Cells become trimmed strings (or None when empty). Spreadsheets often turn ids into numbers and
drop their leading zeros: id columns of a known width are padded back."""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

# Columns holding fixed-width numeric ids, and their width.
ID_WIDTHS = {"national_id": 12, "rep_national_id": 12, "si_number": 10, "commune_code": 5}
MAX_ROWS = 200_000


class UnreadableTable(ValueError):
    """The upload cannot be read as the table it claims to be."""


def normalise_header(name: Any) -> str:
    return str(name or "").strip().lower().replace(" ", "_").replace("-", "_")


def cell_text(column: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = value.date().isoformat()
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value).strip()
    if not text:
        return None
    width = ID_WIDTHS.get(column)
    if width and text.isdigit() and len(text) < width and not isinstance(value, str):
        text = text.zfill(width)
    return text


Row = tuple[int, dict[str, str | None]]  # (row number as the user sees it, cells)


def _rows_from(header: Sequence[Any], records: Iterable[Sequence[Any]], first_row: int) -> tuple[list[str], list[Row]]:
    columns = [normalise_header(h) for h in header]
    if not any(columns):
        raise UnreadableTable("the first row must name the columns")
    rows: list[Row] = []
    for offset, record in enumerate(records):
        cells = {col: cell_text(col, record[i] if i < len(record) else None)
                 for i, col in enumerate(columns) if col}
        if all(v is None for v in cells.values()):
            continue  # blank line
        rows.append((first_row + offset, cells))
        if len(rows) > MAX_ROWS:
            raise UnreadableTable(f"at most {MAX_ROWS} rows per upload")
    return [c for c in columns if c], rows


def read_csv(content: bytes) -> tuple[list[str], list[Row]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableTable("a CSV upload must be UTF-8") from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration as exc:
        raise UnreadableTable("the file is empty") from exc
    except csv.Error as exc:
        raise UnreadableTable(f"not a CSV file: {exc}") from exc
    try:
        return _rows_from(header, list(reader), first_row=2)
    except csv.Error as exc:
        raise UnreadableTable(f"not a CSV file: {exc}") from exc


def read_xlsx(content: bytes) -> tuple[list[str], list[Row]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UnreadableTable("not an XLSX workbook") from exc
    try:
        sheet = workbook.worksheets[0]
        records = sheet.iter_rows(values_only=True)
        try:
            header = next(records)
        except StopIteration as exc:
            raise UnreadableTable("the sheet is empty") from exc
        return _rows_from(header, [tuple(r) for r in records], first_row=2)
    finally:
        workbook.close()


def read_json_rows(rows: Any) -> tuple[list[str], list[Row]]:
    """`{"rows": [{...}, ...]}`: row n is the n-th object, counted from 1."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UnreadableTable("`rows` must be a list of objects")
    if len(rows) > MAX_ROWS:
        raise UnreadableTable(f"at most {MAX_ROWS} rows per upload")
    columns: list[str] = []
    out: list[Row] = []
    for index, record in enumerate(rows):
        cells = {}
        for key, value in record.items():
            col = normalise_header(key)
            if col not in columns:
                columns.append(col)
            cells[col] = cell_text(col, value)
        out.append((index + 1, cells))
    return columns, out


def is_xlsx(content: bytes) -> bool:
    return content[:4] == b"PK\x03\x04"


def write_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel then reads Vietnamese correctly
