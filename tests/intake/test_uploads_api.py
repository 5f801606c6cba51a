"""The roll and payment-method uploads on the real PostgreSQL: JSON, CSV and XLSX, row by row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from openpyxl import Workbook
from sqlalchemy import select, update

from services.intake.adapters.orm import (
    audit_log,
    beneficiaries,
    entitlements,
    outbox,
    payment_method_history,
    payment_methods,
)
from services.intake.service_layer.uploads import ROLL_COLUMNS
from tests.intake import builders

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx(rows: list[dict], columns: list[str] = ROLL_COLUMNS) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(c) for c in columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


class TestRollXlsx:
    async def test_good_rows_taken_bad_rows_refused_with_reasons(self, intake):
        good = [builders.roll_row("PENSION") for _ in range(3)]
        # Excel turned this CCCD into a number and dropped its leading zero: it is padded back.
        as_number = builders.roll_row("SI_ALLOWANCE")
        as_number["national_id"] = int(as_number["national_id"])
        bad_cccd = builders.roll_row("PENSION", national_id="026999999999")
        not_roll = builders.roll_row("UNEMPLOYMENT")
        no_amount = builders.roll_row("PENSION", amount_per_installment=None)
        repeated = builders.roll_row("PENSION", decision_number=good[0]["decision_number"])
        no_reason_cash = builders.roll_row(
            "PENSION", payment_method="CASH_POST_OFFICE", bank_bin=None, account_number=None
        )
        rows = [*good, as_number, bad_cccd, not_roll, no_amount, repeated, no_reason_cash]
        files = {"file": ("roll.xlsx", xlsx(rows), XLSX)}
        response = await intake.post("/v1/roll/uploads", "bhxh", files=files)
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["format"] == "XLSX" and report["total_rows"] == 9
        assert report["accepted"] == 4 and report["rejected"] == 5 and report["unchanged"] == 0
        assert [r["row"] for r in report["rows"]] == [2, 3, 4, 5]
        refused = {r["row"]: r["errors"] for r in report["rejections"]}
        assert refused[6][0]["pointer"] == "/national_id"
        assert refused[7][0]["pointer"] == "/scheme"
        assert refused[8][0]["pointer"] == "/amount_per_installment"
        assert refused[9] == [
            {"pointer": "/decision_number", "detail": "repeats row 2 of this upload"}
        ]
        assert refused[10][0]["pointer"] == "/cash_reason"
        assert await intake.count(entitlements) == 4
        assert await intake.count(beneficiaries) == 4
        assert await intake.count(payment_methods) == 4

        # The refused rows, downloadable with the reasons, masked without pii:read.
        download = await intake.get(
            f"/v1/roll/uploads/{report['upload_id']}/rejections.csv", "bhxh"
        )
        assert download.status_code == 200 and download.headers["content-type"].startswith(
            "text/csv"
        )
        lines = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert [int(line["row"]) for line in lines] == [6, 7, 8, 9, 10]
        assert lines[0]["national_id"] == "026*******99" and "12 digits" not in lines[0]["reasons"]
        assert lines[2]["fields"] == "/amount_per_installment"
        stored = (await intake.get(f"/v1/roll/uploads/{report['upload_id']}", "bhxh")).json()
        assert stored["accepted"] == 4 and len(stored["rejections"]) == 5

    async def test_re_upload_of_the_same_file_changes_nothing(self, intake):
        rows = [builders.roll_row("PENSION") for _ in range(4)]
        content = xlsx(rows)
        first = await intake.post(
            "/v1/roll/uploads", "bhxh", files={"file": ("roll.xlsx", content, XLSX)}
        )
        assert first.json()["accepted"] == 4
        counts = [
            await intake.count(t)
            for t in (beneficiaries, entitlements, payment_methods, outbox, audit_log)
        ]
        again = await intake.post(
            "/v1/roll/uploads", "bhxh", files={"file": ("roll.xlsx", content, XLSX)}
        )
        report = again.json()
        assert report["accepted"] == 0 and report["unchanged"] == 4 and report["rejected"] == 0
        assert [r["entitlement_id"] for r in report["rows"]] == [
            r["entitlement_id"] for r in first.json()["rows"]
        ]
        assert [
            await intake.count(t)
            for t in (beneficiaries, entitlements, payment_methods, outbox, audit_log)
        ] == counts

    async def test_an_agency_registers_its_own_schemes_only(self, intake):
        response = await intake.post(
            "/v1/roll/uploads", "bhxh", json={"rows": [builders.roll_row("MERITORIOUS")]}
        )
        report = response.json()
        assert report["rejected"] == 1
        assert report["rejections"][0]["errors"][0]["pointer"] == "/rows/0/scheme"


class TestRollJsonAndCsv:
    async def test_json_rows_with_pointers_into_the_body(self, intake):
        rows = [
            builders.roll_row("MERITORIOUS"),
            builders.roll_row("SOCIAL_PROTECTION", commune_code="00000"),
            builders.roll_row("MERITORIOUS", decision_number="Q" * 101),
        ]
        response = await intake.post("/v1/roll/uploads", "dolisa", json={"rows": rows})
        report = response.json()
        assert report["format"] == "JSON" and report["accepted"] == 1
        assert report["rejections"] == [
            {
                "row": 2,
                "errors": [
                    {
                        "pointer": "/rows/1/commune_code",
                        "detail": "no commune with that code in the list of 2023-05-07",
                    }
                ],
            },
            {
                "row": 3,
                "errors": [
                    {
                        "pointer": "/rows/2/decision_number",
                        "detail": "is longer than 100 characters",
                    }
                ],
            },
        ]

    async def test_csv_body(self, intake):
        rows = [
            builders.roll_row(
                "SOCIAL_PROTECTION",
                payment_method="CASH_POST_OFFICE",
                bank_bin=None,
                account_number=None,
                cash_reason="Bedridden, no relative to authorise",
            )
        ]
        response = await intake.post(
            "/v1/roll/uploads",
            "dolisa",
            content=csv_bytes(rows, ROLL_COLUMNS),
            headers={"content-type": "text/csv"},
        )
        assert response.status_code == 201 and response.json()["accepted"] == 1
        [method] = await intake.rows(select(payment_methods))
        assert method.kind == "CASH_POST_OFFICE" and method.status == "VERIFIED"

    async def test_unknown_columns_refuse_the_whole_upload(self, intake):
        content = b"national_id,acount_number\n026090001234,1234567\n"
        response = await intake.post(
            "/v1/roll/uploads", "bhxh", content=content, headers={"content-type": "text/csv"}
        )
        assert response.status_code == 422
        pointers = {e["pointer"] for e in response.json()["errors"]}
        assert "/columns/acount_number" in pointers and "/columns/scheme" in pointers

    async def test_unreadable_xlsx_is_422_not_500(self, intake):
        response = await intake.post(
            "/v1/roll/uploads", "bhxh", files={"file": ("roll.xlsx", b"PK\x03\x04junk", XLSX)}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/file"

    async def test_needs_roll_write(self, intake):
        response = await intake.post("/v1/roll/uploads", "portal", json={"rows": []})
        assert response.status_code == 403


async def _registered(intake, scheme: str = "PENSION", **overrides) -> dict:
    row = builders.roll_row(scheme, **overrides)
    report = (await intake.post("/v1/roll/uploads", "admin", json={"rows": [row]})).json()
    assert report["accepted"] == 1, report
    return {**row, "beneficiary_id": report["rows"][0]["beneficiary_id"]}


class TestPaymentMethods:
    async def test_change_is_pending_until_verified_with_history(self, intake):
        person = await _registered(intake)
        path = f"/v1/beneficiaries/{person['beneficiary_id']}/payment-method"
        new = {"method": "OWN_ACCOUNT", "bank_bin": "970415", "account_number": builders.account()}
        response = await intake.put(path, "bhxh", json=new)
        assert response.status_code == 200, response.text
        assert (
            response.json()["status"] == "PENDING_VERIFICATION"
            and response.json()["changed"] is True
        )
        same = await intake.put(path, "bhxh", json=new)
        assert same.json()["changed"] is False and same.headers["Idempotent-Replayed"] == "true"
        listing = (
            await intake.get(
                f"/v1/beneficiaries/{person['beneficiary_id']}/payment-methods", "bhxh"
            )
        ).json()
        assert [m["current"] for m in listing["methods"]] == [True, False]
        assert listing["methods"][0]["account_number"] == "****" + new["account_number"][-4:]
        assert [(h["change"], h["channel"], h["by"]) for h in listing["history"]] == [
            ("CREATED", "ROLL", "admin"),
            ("SUPERSEDED", "API", "bhxh"),
            ("CREATED", "API", "bhxh"),
        ]
        assert not listing["methods"][0]["usable_for_payment"]

    async def test_authorised_account_shows_expired_after_valid_until(self, intake):
        person = await _registered(intake)
        today = datetime.now(UTC).date()
        rep = {
            "national_id": builders.cccd(date(1980, 3, 3), female=True),
            "full_name": "Trần Thị Hoa",
            "relationship": "con",
            "power_of_attorney_ref": "UQ-15/2023",
            "valid_from": (today - timedelta(days=30)).isoformat(),
            "valid_until": (today + timedelta(days=30)).isoformat(),
        }
        body = {
            "method": "AUTHORISED_ACCOUNT",
            "bank_bin": "970436",
            "account_number": builders.account(),
            "representative": rep,
        }
        response = await intake.put(
            f"/v1/beneficiaries/{person['beneficiary_id']}/payment-method", "bhxh", json=body
        )
        assert response.status_code == 200, response.text
        method_id = response.json()["method_id"]
        view = (await intake.get(f"/v1/beneficiaries/{person['beneficiary_id']}", "bhxh")).json()[
            "payment_method"
        ]
        assert view["representative"]["authorisation"] == "VALID"
        assert (
            view["account_holder_name"] == "T*** T** H**"
        )  # the representative's name, masked without pii:read
        assert view["representative"]["national_id"].count("*") == 7
        # Time passes: the authorisation ends yesterday (and the bank had verified the account).
        async with intake.app.state.runtime.engine.begin() as conn:
            await conn.execute(
                update(payment_methods)
                .where(payment_methods.c.id == method_id)
                .values(rep_valid_until=today - timedelta(days=1), status="VERIFIED")
            )
        view = (await intake.get(f"/v1/beneficiaries/{person['beneficiary_id']}", "bhxh")).json()[
            "payment_method"
        ]
        assert view["status"] == "EXPIRED" and view["stored_status"] == "VERIFIED"
        assert view["usable_for_payment"] is False

    async def test_expired_authorisation_cannot_be_registered(self, intake):
        person = await _registered(intake)
        rep = {
            "national_id": builders.cccd(date(1980, 3, 3)),
            "full_name": "Lê Văn Bình",
            "relationship": "con",
            "power_of_attorney_ref": "UQ-1",
            "valid_from": "2020-01-01",
            "valid_until": "2021-01-01",
        }
        response = await intake.put(
            f"/v1/beneficiaries/{person['beneficiary_id']}/payment-method",
            "bhxh",
            json={
                "method": "AUTHORISED_ACCOUNT",
                "bank_bin": "970436",
                "account_number": builders.account(),
                "representative": rep,
            },
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/representative/valid_until"

    async def test_bulk_csv_update_from_a_commune_spreadsheet(self, intake):
        people = [await _registered(intake) for _ in range(3)]
        columns = ["national_id", "payment_method", "bank_bin", "account_number", "cash_reason"]
        rows = [
            {
                "national_id": people[0]["national_id"],
                "payment_method": "OWN_ACCOUNT",
                "bank_bin": "970418",
                "account_number": builders.account(),
            },
            {
                "national_id": people[1]["national_id"],
                "payment_method": people[1]["payment_method"],
                "bank_bin": people[1]["bank_bin"],
                "account_number": people[1]["account_number"],
            },  # unchanged
            {
                "national_id": builders.cccd(date(1960, 1, 1)),
                "payment_method": "OWN_ACCOUNT",
                "bank_bin": "970418",
                "account_number": builders.account(),
            },  # nobody registered
            {
                "national_id": people[2]["national_id"],
                "payment_method": "CASH_POST_OFFICE",
                "cash_reason": "Không thể giao dịch, không có người được ủy quyền",
            },
        ]
        response = await intake.post(
            "/v1/payment-methods/uploads",
            "bhxh",
            files={"file": ("xa-thanh-tru.csv", csv_bytes(rows, columns), "text/csv")},
        )
        assert response.status_code == 201, response.text
        report = response.json()
        assert [(r["row"], r["outcome"]) for r in report["rows"]] == [
            (2, "UPDATED"),
            (3, "UNCHANGED"),
            (5, "UPDATED"),
        ]
        assert report["rejections"][0]["row"] == 4
        history = await intake.rows(
            select(payment_method_history.c.channel, payment_method_history.c.client_id).where(
                payment_method_history.c.change == "CREATED",
                payment_method_history.c.channel == "SPREADSHEET",
            )
        )
        assert history == [("SPREADSHEET", "bhxh"), ("SPREADSHEET", "bhxh")]
        again = (
            await intake.post(
                "/v1/payment-methods/uploads",
                "bhxh",
                files={"file": ("xa-thanh-tru.csv", csv_bytes(rows, columns), "text/csv")},
            )
        ).json()
        assert again["accepted"] == 0 and again["unchanged"] == 3
