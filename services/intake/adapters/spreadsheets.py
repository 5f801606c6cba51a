"""Reading uploaded tables (CSV, XLSX, JSON rows) into rows of text cells, and writing CSV.

Cells become trimmed strings (or None when empty). Spreadsheets often turn ids into numbers and
drop their leading zeros: id columns of a known width are padded back.

Reading is bounded: rows are read one at a time and reading stops past the row limit, the whole
read has a deadline, and an XLSX workbook is refused before it is opened if it unpacks to more
than a limit (as declared, as compressed, and as really unpacked). These functions block: call
them off the event loop."""

from __future__ import annotations

import csv
import io
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# Columns holding fixed-width numeric ids, and their width.
ID_WIDTHS = {"national_id": 12, "rep_national_id": 12, "si_number": 10, "commune_code": 5}
# A worksheet unpacks to ten or twenty times its compressed size; a hundred is no real workbook.
MAX_PACKING_RATIO = 100
RATIO_FROM_BYTES = (
    1024 * 1024
)  # small parts (styles, themes) may pack better: the total bounds them
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_unpacked_bytes: int  # an XLSX workbook, all its parts unpacked
    max_seconds: float  # reading one table, from its bytes to its rows


class UnreadableTable(ValueError):
    """The upload cannot be read as the table it claims to be."""


class TooLarge(Exception):
    """The upload passes one of its limits; the message says which."""


class _Deadline:
    def __init__(self, limits: Limits) -> None:
        self.seconds = limits.max_seconds
        self.at = time.monotonic() + limits.max_seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise TooLarge(f"reading the table took longer than {self.seconds:g} s")


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


def _too_many_rows(limits: Limits) -> TooLarge:
    return TooLarge(f"an upload holds at most {limits.max_rows} rows")


def _rows_from(
    header: Sequence[Any],
    records: Iterable[Sequence[Any]],
    first_row: int,
    limits: Limits,
    deadline: _Deadline,
) -> tuple[list[str], list[Row]]:
    """Rows are taken one at a time from `records`, so that reading stops at the row limit."""
    columns = [normalise_header(h) for h in header]
    if not any(columns):
        raise UnreadableTable("the first row must name the columns")
    rows: list[Row] = []
    for offset, record in enumerate(records):
        deadline.check()
        cells = {
            col: cell_text(col, record[i] if i < len(record) else None)
            for i, col in enumerate(columns)
            if col
        }
        if all(v is None for v in cells.values()):
            continue  # blank line
        if len(rows) == limits.max_rows:
            raise _too_many_rows(limits)
        rows.append((first_row + offset, cells))
    return [c for c in columns if c], rows


def read_csv(content: bytes, limits: Limits) -> tuple[list[str], list[Row]]:
    deadline = _Deadline(limits)
    # Decoded as it is read: the text is never held whole next to the bytes.
    text = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    try:
        try:
            dialect = csv.Sniffer().sniff(text.read(4096), delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        text.seek(0)
        reader = csv.reader(text, dialect)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise UnreadableTable("the file is empty") from exc
        return _rows_from(header, reader, 2, limits, deadline)
    except UnicodeDecodeError as exc:
        raise UnreadableTable("a CSV upload must be UTF-8") from exc
    except csv.Error as exc:
        raise UnreadableTable(f"not a CSV file: {exc}") from exc


def _check_unpacked_size(content: bytes, limits: Limits, deadline: _Deadline) -> None:
    """Refuse a workbook that unpacks past the limit before openpyxl opens it: by the sizes its
    parts declare, by how tightly they are packed, then by unpacking them (the declared sizes
    may lie), a chunk at a time."""
    limit = limits.max_unpacked_bytes
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            parts = archive.infolist()
            if sum(p.file_size for p in parts) > limit:
                raise TooLarge(f"the workbook unpacks to more than {limit} bytes")
            for part in parts:
                ratio = part.file_size / max(part.compress_size, 1)
                if part.file_size > RATIO_FROM_BYTES and ratio > MAX_PACKING_RATIO:
                    raise TooLarge(
                        f"the workbook unpacks to {ratio:.0f} times its size, "
                        f"more than any real workbook (at most {MAX_PACKING_RATIO})"
                    )
            unpacked = 0
            for part in parts:
                with archive.open(part) as stream:
                    while chunk := stream.read(READ_CHUNK):
                        unpacked += len(chunk)
                        if unpacked > limit:
                            raise TooLarge(f"the workbook unpacks to more than {limit} bytes")
                        deadline.check()
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        # A damaged archive, a part whose size or checksum is not what it declares, an
        # unsupported compression, encryption.
        raise UnreadableTable("not an XLSX workbook") from exc


def read_xlsx(content: bytes, limits: Limits) -> tuple[list[str], list[Row]]:
    from openpyxl import load_workbook

    deadline = _Deadline(limits)
    _check_unpacked_size(content, limits, deadline)
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError) as exc:
        raise UnreadableTable("not an XLSX workbook") from exc
    try:
        sheet = workbook.worksheets[0]
        # The declared dimension may claim a million rows and columns: read the cells present.
        sheet.reset_dimensions()
        records = sheet.iter_rows(values_only=True)
        try:
            header = next(records)
        except StopIteration as exc:
            raise UnreadableTable("the sheet is empty") from exc
        return _rows_from(header, records, 2, limits, deadline)
    except (UnreadableTable, TooLarge):
        raise
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError, IndexError) as exc:
        raise UnreadableTable("not an XLSX workbook") from exc
    finally:
        workbook.close()


def read_json_rows(rows: Any, limits: Limits) -> tuple[list[str], list[Row]]:
    """`{"rows": [{...}, ...]}`: row n is the n-th object, counted from 1."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UnreadableTable("`rows` must be a list of objects")
    if len(rows) > limits.max_rows:
        raise _too_many_rows(limits)
    deadline = _Deadline(limits)
    columns: list[str] = []
    out: list[Row] = []
    for index, record in enumerate(rows):
        deadline.check()
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
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return ("\ufeff" + buffer.getvalue()).encode(
        "utf-8"
    )  # BOM: Excel then reads Vietnamese correctly
