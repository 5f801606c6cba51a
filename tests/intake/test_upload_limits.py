"""Uploads cannot exhaust the service's memory or stall it: the body is cut off at the byte
limit as it streams in (whatever Content-Length says), reading stops at the row limit, tables are
read off the event loop within a time bound, and an XLSX workbook may not unpack past a limit."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from openpyxl import Workbook
from sqlalchemy import func, select

from services.intake.adapters import spreadsheets
from services.intake.adapters.orm import upload_rows, uploads
from services.intake.service_layer.uploads import PAYMENT_METHOD_COLUMNS, ROLL_COLUMNS
from services.intake.settings import IntakeSettings
from tests.fuzz.servers import ServiceServer, service_settings
from tests.intake import builders
from tests.intake.conftest import Intake, running_intake
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database

PROBLEM = "application/problem+json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MiB = 1024 * 1024
BYTE_LIMIT = 2 * MiB
ROW_LIMIT = 1_000
UNPACKED_LIMIT = 64 * MiB
CHUNK = 64 * 1024
PATHS = {"/v1/roll/uploads": ROLL_COLUMNS, "/v1/payment-methods/uploads": PAYMENT_METHOD_COLUMNS}
SCOPES = {"roll:write", "payment-methods:write", "agency:BHXH"}
BIG_XLSX_ROWS = 15_000  # takes seconds to read: long enough to see the event loop stall


def _settings(url: str, tmp_path, **overrides) -> IntakeSettings:
    values = {
        "database_url": url,
        "kafka_bootstrap_servers": KAFKA_BOOTSTRAP,
        "data_dir": tmp_path,
        "upload_max_bytes": BYTE_LIMIT,
        "upload_max_rows": ROW_LIMIT,
        "upload_max_unpacked_bytes": UNPACKED_LIMIT,
    }
    values.update(overrides)
    return IntakeSettings(**values)


@pytest.fixture
async def limited(pg_database, tmp_path) -> AsyncIterator[Intake]:
    async for running in running_intake(_settings(await pg_database("intake"), tmp_path)):
        yield running


async def _stored(intake: Intake) -> tuple[int, int]:
    async with intake.app.state.runtime.engine.connect() as conn:
        heads = (await conn.execute(select(func.count()).select_from(uploads))).scalar_one()
        rows = (await conn.execute(select(func.count()).select_from(upload_rows))).scalar_one()
    return heads, rows


def _assert_too_large(response: httpx.Response, limit_text: str) -> None:
    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 413 and limit_text in problem["detail"], problem


def _csv_line(columns: list[str], width: int = 1000) -> bytes:
    # One junk row per line, long so that a few thousand make megabytes.
    return (",".join(["x" * (width // len(columns))] * len(columns)) + "\n").encode()


@dataclass
class EndlessBody:
    """A request body sent in chunks with no Content-Length, counting what the server pulled."""

    head: bytes
    line: bytes
    total: int
    pulled: int = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.pulled += len(self.head)
        yield self.head
        chunk = self.line * max(1, CHUNK // len(self.line))
        while self.pulled < self.total:
            self.pulled += len(chunk)
            yield chunk


def _bodies(columns: list[str]) -> dict[str, tuple[str, bytes, bytes]]:
    """content type, head and repeated tail of an over-limit body in every accepted format."""
    header = (",".join(columns) + "\n").encode()
    boundary = "upload-limit-boundary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="rows.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n"
    ).encode()
    return {
        "csv": ("text/csv", header, _csv_line(columns)),
        "multipart": (
            f"multipart/form-data; boundary={boundary}",
            part + header,
            _csv_line(columns),
        ),
        "json": ("application/json", b'{"rows": [', b'{"national_id": "' + b"1" * 990 + b'"},'),
        "xlsx": (XLSX, b"PK\x03\x04", b"\0" * 1000),
    }


class TestTheBodyLimit:
    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("kind", ["csv", "multipart", "json", "xlsx"])
    async def test_a_chunked_body_past_the_limit_is_refused_as_it_streams_and_nothing_is_stored(
        self, limited, path, kind
    ):
        content_type, head, line = _bodies(PATHS[path])[kind]
        body = EndlessBody(head, line, total=4 * BYTE_LIMIT)
        response = await limited.post(
            path, "admin", content=body, headers={"content-type": content_type}
        )
        _assert_too_large(response, str(BYTE_LIMIT))
        assert "content-length" not in {k.lower() for k in response.request.headers}
        # Refused as soon as the limit was passed, not after the whole body was read.
        assert body.pulled <= BYTE_LIMIT + 2 * CHUNK, body.pulled
        assert await _stored(limited) == (0, 0)

    @pytest.mark.parametrize("path", PATHS)
    async def test_a_content_length_smaller_than_the_body_does_not_lift_the_limit(
        self, limited, path
    ):
        columns = PATHS[path]
        content = (",".join(columns) + "\n").encode() + _csv_line(columns) * (
            3 * BYTE_LIMIT // 1000
        )
        response = await limited.post(
            path,
            "admin",
            content=content,
            headers={"content-type": "text/csv", "content-length": "100"},
        )
        _assert_too_large(response, str(BYTE_LIMIT))
        assert await _stored(limited) == (0, 0)

    async def test_a_declared_length_past_the_limit_is_refused_before_reading(self, limited):
        body = EndlessBody(
            b"national_id,payment_method\n", _csv_line(["a", "b"]), total=2 * BYTE_LIMIT
        )
        response = await limited.post(
            "/v1/payment-methods/uploads",
            "admin",
            content=body,
            headers={"content-type": "text/csv", "content-length": str(BYTE_LIMIT + 1)},
        )
        _assert_too_large(response, str(BYTE_LIMIT))
        assert body.pulled == 0

    async def test_a_body_of_exactly_the_limit_is_read(self, limited):
        row = builders.roll_row("PENSION")
        content = (
            ",".join(ROLL_COLUMNS)
            + "\n"
            + ",".join(str(row.get(c, "")) for c in ROLL_COLUMNS)
            + "\n"
        ).encode()
        while len(content) < BYTE_LIMIT:  # rows of blanks are skipped
            content += b" " * min(100_000, BYTE_LIMIT - len(content) - 1) + b"\n"
        assert len(content) == BYTE_LIMIT
        response = await limited.post(
            "/v1/roll/uploads", "bhxh", content=content, headers={"content-type": "text/csv"}
        )
        assert response.status_code == 201, response.text[:500]
        assert response.json()["accepted"] == 1
        over = await limited.post(
            "/v1/roll/uploads",
            "bhxh",
            content=content + b"\n",
            headers={"content-type": "text/csv"},
        )
        _assert_too_large(over, str(BYTE_LIMIT))


def _many_rows_csv(columns: list[str], size: int) -> bytes:
    """Short rows: many rows per megabyte, the case where rows cost far more memory than bytes."""
    line = ("," * (len(columns) - 1) + "1\n").encode()
    header = (",".join(columns) + "\n").encode()
    return header + line * ((size - len(header)) // len(line))


class TestTheRowLimit:
    @pytest.mark.parametrize("path", PATHS)
    async def test_a_csv_past_the_row_limit_is_refused_without_holding_all_its_rows(
        self, pg_database, tmp_path, path
    ):
        size = 5 * MiB
        async for intake in running_intake(
            _settings(await pg_database("intake"), tmp_path, upload_max_bytes=6 * MiB)
        ):
            content = _many_rows_csv(PATHS[path], size)
            assert content.count(b"\n") > 100 * ROW_LIMIT
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                before, _ = tracemalloc.get_traced_memory()
                response = await intake.post(
                    path, "admin", content=content, headers={"content-type": "text/csv"}
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            _assert_too_large(response, f"{ROW_LIMIT} rows")
            # The body itself, a copy or two and a thousand rows: not a million rows' worth.
            assert peak - before < 4 * size, (
                f"{(peak - before) / MiB:.1f} MiB for a {size / MiB:.0f} MiB upload"
            )
            assert await _stored(intake) == (0, 0)

    async def test_an_xlsx_past_the_row_limit_is_refused(self, limited):
        content = _workbook(ROLL_COLUMNS, ROW_LIMIT + 1)
        response = await limited.post(
            "/v1/roll/uploads", "bhxh", files={"file": ("roll.xlsx", content, XLSX)}
        )
        _assert_too_large(response, f"{ROW_LIMIT} rows")
        assert await _stored(limited) == (0, 0)

    async def test_json_rows_past_the_row_limit_are_refused(self, limited):
        rows = [{"national_id": "026090001234", "payment_method": "CASH_POST_OFFICE"}] * (
            ROW_LIMIT + 1
        )
        response = await limited.post("/v1/payment-methods/uploads", "bhxh", json={"rows": rows})
        _assert_too_large(response, f"{ROW_LIMIT} rows")
        assert await _stored(limited) == (0, 0)


def _workbook(columns: list[str], rows: int) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(columns)
    for _ in range(rows):
        row = builders.roll_row("PENSION")
        sheet.append([row.get(c) for c in columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_workbook() -> bytes:
    return _workbook(ROLL_COLUMNS, BIG_XLSX_ROWS)


@pytest_asyncio.fixture
async def served(tmp_path) -> AsyncIterator[ServiceServer]:
    """Intake served by uvicorn: the row limit is the last row of the big workbook, so reading it
    takes the whole file and nothing is then written."""
    name, url = await create_database("upload_limits")
    server = ServiceServer(
        "intake",
        service_settings(
            "intake",
            database_url=url,
            kafka=KAFKA_BOOTSTRAP,
            data_dir=tmp_path,
            upload_max_rows=BIG_XLSX_ROWS - 1,
            upload_max_bytes=50 * MiB,
        ),
    )
    try:
        yield await server.start()
    finally:
        await server.stop()
        await drop_database(name)


class TestReadingOffTheEventLoop:
    async def test_health_answers_promptly_while_a_large_workbook_is_read(
        self, served, big_workbook
    ):
        # The server shares this test's event loop: a stalled loop shows as a long gap between
        # two answers to /healthz, whether the stall fell in a request or in the pause between.
        gaps: list[float] = []
        async with served.client(SCOPES) as http:
            upload = asyncio.ensure_future(
                http.post(
                    "/v1/roll/uploads",
                    files={"file": ("roll.xlsx", big_workbook, XLSX)},
                    timeout=120,
                )
            )
            started = last = time.monotonic()
            while not upload.done():
                await asyncio.sleep(0.05)
                assert (await http.get("/healthz")).status_code == 200
                now = time.monotonic()
                gaps.append(now - last)
                last = now
            elapsed = time.monotonic() - started
            response = await upload
        assert elapsed > 1.0, "the workbook was read too fast to tell anything"
        assert max(gaps) < 1.0, (
            f"/healthz went unanswered for {max(gaps):.2f} s while an upload was read"
        )
        assert len(gaps) >= 10, gaps
        _assert_too_large(response, f"{BIG_XLSX_ROWS - 1} rows")

    async def test_reading_a_table_is_bounded_in_time(self, pg_database, tmp_path):
        rows = 4_000_000  # seconds of reading, were it read to the end
        async for intake in running_intake(
            _settings(
                await pg_database("intake"),
                tmp_path,
                upload_max_bytes=50 * MiB,
                upload_max_rows=rows,
                upload_parse_seconds=0.2,
            )
        ):
            content = b"national_id,payment_method\n" + b"1,\n" * rows
            started = time.monotonic()
            response = await intake.post(
                "/v1/payment-methods/uploads",
                "bhxh",
                content=content,
                headers={"content-type": "text/csv"},
            )
            elapsed = time.monotonic() - started
            _assert_too_large(response, "0.2 s")
            assert elapsed < 3.0, f"answered after {elapsed:.1f} s"
            assert await _stored(intake) == (0, 0)


# --- XLSX bombs --------------------------------------------------------------------------------

SHEET = "xl/worksheets/sheet1.xml"
BOMB_BYTES = 300 * MiB


def _bomb(unpacked: int = BOMB_BYTES) -> bytes:
    """A real workbook whose sheet is replaced by one that unpacks to `unpacked` bytes of rows
    (a few hundred kilobytes compressed), written in pieces so the test never holds it."""
    source = zipfile.ZipFile(io.BytesIO(_workbook(ROLL_COLUMNS, 1)))
    out = io.BytesIO()
    row = b"<row>" + b'<c t="inlineStr"><is><t>1</t></is></c>' * 8 + b"</row>"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            if info.filename != SHEET:
                bomb.writestr(info, source.read(info.filename))
                continue
            with bomb.open(SHEET, "w") as sheet:
                head = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                sheet.write(head)
                piece = row * (MiB // len(row))
                written = len(head)
                while written < unpacked:
                    sheet.write(piece)
                    written += len(piece)
                sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def _understate_sizes(content: bytes, member: str, declared: int) -> bytes:
    """Rewrite the local and central headers of `member` to claim `declared` unpacked bytes."""
    data = bytearray(content)
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo(member)
    struct.pack_into(
        "<I", data, info.header_offset + 22, declared
    )  # local header: uncompressed size
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + length]) == name:
            struct.pack_into("<I", data, at + 24, declared)  # central directory: uncompressed size
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _bomb()


def _measured(coroutine_factory):
    """Run the coroutine with memory tracing: (result, peak growth in bytes, seconds)."""

    async def run():
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            started = time.monotonic()
            result = await coroutine_factory()
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return result, peak - before, elapsed

    return run()


class TestXlsxBombs:
    async def test_a_workbook_that_unpacks_to_hundreds_of_megabytes_is_refused_before_it_is_opened(
        self, limited, bomb
    ):
        assert len(bomb) < BYTE_LIMIT  # small on the wire
        response, grown, elapsed = await _measured(
            lambda: limited.post(
                "/v1/roll/uploads", "bhxh", files={"file": ("roll.xlsx", bomb, XLSX)}
            )
        )
        _assert_too_large(response, "unpack")
        assert response.json()["errors"][0]["pointer"] == "/file"
        assert elapsed < 5.0, f"answered after {elapsed:.1f} s"
        assert grown < 16 * MiB, f"{grown / MiB:.1f} MiB"
        assert await _stored(limited) == (0, 0)

    async def test_a_workbook_whose_headers_understate_its_size_is_refused(self, limited, bomb):
        lying = _understate_sizes(bomb, SHEET, 64 * 1024)
        assert zipfile.ZipFile(io.BytesIO(lying)).getinfo(SHEET).file_size == 64 * 1024
        response, grown, elapsed = await _measured(
            lambda: limited.post(
                "/v1/payment-methods/uploads", "bhxh", content=lying, headers={"content-type": XLSX}
            )
        )
        assert response.status_code in (413, 422), response.text[:500]
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["errors"][0]["pointer"] == "/file"
        assert elapsed < 5.0, f"answered after {elapsed:.1f} s"
        assert grown < 16 * MiB, f"{grown / MiB:.1f} MiB"
        assert await _stored(limited) == (0, 0)

    def test_an_honest_workbook_past_the_unpacked_limit_is_refused_by_size(self):
        content = _workbook(ROLL_COLUMNS, 2_000)  # about 1.5 MB unpacked, compressed about tenfold
        assert sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(content)).infolist()) > MiB
        limits = spreadsheets.Limits(
            max_rows=ROW_LIMIT * 10, max_unpacked_bytes=MiB, max_seconds=60
        )
        with pytest.raises(spreadsheets.TooLarge, match="unpack"):
            spreadsheets.read_xlsx(content, limits)
        columns, rows = spreadsheets.read_xlsx(
            content, spreadsheets.Limits(ROW_LIMIT * 10, 4 * MiB, 60)
        )
        assert columns == ROLL_COLUMNS and len(rows) == 2_000
