"""Who may act on whom, on the real PostgreSQL: an agency acts only on the beneficiaries and
entitlements it pays (an open entitlement of its schemes), the portal only on its own claims; a
refusal changes nothing and emits nothing, so payout never runs a name inquiry for it. Names,
dates of birth and SI numbers are masked without `pii:read`."""

from __future__ import annotations

from sqlalchemy import select

from services.intake.adapters.orm import audit_log, outbox, payment_method_history, payment_methods
from services.intake.service_layer.clients import AGENCY_SCOPES
from shared.auth import issue_token
from tests.intake import builders

PROBLEM = "application/problem+json"
METHOD_EVENTS = outbox.c.event_type.like("%.payment-method-changed.%")
# The development clients' scopes (as the token endpoint issues them), plus a second filer.
TOKENS: dict[str, tuple[str, ...]] = {
    "bhxh": (*AGENCY_SCOPES, "agency:BHXH"),
    "dolisa": (*AGENCY_SCOPES, "agency:DOLISA"),
    "esc": (*AGENCY_SCOPES, "agency:ESC"),
    "portal": ("claims:write", "claims:read"),
    "other-portal": ("claims:write", "claims:read"),
    "filer-decider": (
        "claims:write",
        "claims:read",
        "decisions:write",
    ),  # no agency, no registry reads
}


def auth(intake, who: str) -> dict[str, str]:
    if who not in TOKENS:
        return intake.auth(who)
    return {
        "Authorization": f"Bearer {issue_token(intake.app.state.signing_key, who, TOKENS[who])}"
    }


async def call(intake, method: str, path: str, who: str, **kwargs):
    return await intake.http.request(method, path, headers=auth(intake, who), **kwargs)


async def pensioner(intake, **overrides) -> tuple[str, dict]:
    """A BHXH pensioner from the roll, with a verified-pending own account."""
    row = builders.roll_row("PENSION", **overrides)
    response = await call(intake, "POST", "/v1/roll/uploads", "bhxh", json={"rows": [row]})
    assert response.status_code == 201 and response.json()["accepted"] == 1, response.text
    return response.json()["rows"][0]["beneficiary_id"], row


async def overseas_worker(intake) -> tuple[str, str]:
    """A person the ESC pays: an overseas-labour claim from the portal, approved by the ESC."""
    body = builders.claim("OVERSEAS_LABOUR")
    filed = await call(intake, "POST", "/v1/claims", "portal", json=body)
    assert filed.status_code == 201, filed.text
    claim_id = filed.json()["claim_id"]
    approval = {
        "outcome": "APPROVED",
        "agency": "ESC",
        "decision_number": f"ESC-{claim_id[:8]}",
        "amount_per_installment": 12_000_000,
        "schedule": {"kind": "ONE_OFF", "start_period": "2023-05"},
    }
    decided = await call(intake, "POST", f"/v1/claims/{claim_id}/decision", "esc", json=approval)
    assert decided.status_code == 200, decided.text
    return filed.json()["beneficiary_id"], claim_id


def representative(national_id: str) -> dict:
    return {
        "method": "AUTHORISED_ACCOUNT",
        "bank_bin": builders.VIETCOMBANK,
        "account_number": "999900001111",
        "representative": {
            "national_id": national_id,
            "full_name": "Kẻ Lạ Mặt",
            "relationship": "cháu",
            "power_of_attorney_ref": "UQ-1",
            "valid_from": "2023-01-01",
        },
    }


async def footprint(intake, beneficiary_id: str) -> tuple:
    """Everything a method change writes: methods, history, audit entries, method events."""
    return (
        [
            tuple(r)
            for r in await intake.rows(
                select(payment_methods)
                .where(payment_methods.c.beneficiary_id == beneficiary_id)
                .order_by(payment_methods.c.id)
            )
        ],
        await intake.count(
            payment_method_history, payment_method_history.c.beneficiary_id == beneficiary_id
        ),
        await intake.count(audit_log),
        await intake.count(outbox, METHOD_EVENTS),
    )


class TestRedirectingMoney:
    async def test_another_agency_cannot_set_a_pensioners_account_forbidden(self, intake):
        beneficiary_id, _ = await pensioner(intake)
        before = await footprint(intake, beneficiary_id)
        stranger = builders.cccd(builders.date(1990, 1, 1))
        response = await call(
            intake,
            "PUT",
            f"/v1/beneficiaries/{beneficiary_id}/payment-method",
            "esc",
            json=representative(stranger),
        )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert "ESC" in response.json()["detail"] and stranger not in response.text
        # No new method, no history, no audit entry and no PaymentMethodChanged: payout never
        # sees the account, so no name inquiry can verify it.
        assert await footprint(intake, beneficiary_id) == before

    async def test_the_paying_agency_sets_the_account(self, intake):
        beneficiary_id, _ = await pensioner(intake)
        before = await intake.count(outbox, METHOD_EVENTS)
        response = await call(
            intake,
            "PUT",
            f"/v1/beneficiaries/{beneficiary_id}/payment-method",
            "bhxh",
            json={
                "method": "OWN_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": "123400005678",
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["changed"] is True
        assert await intake.count(outbox, METHOD_EVENTS) == before + 1

    async def test_an_agency_whose_entitlement_ended_cannot_redirect_forbidden(self, intake):
        beneficiary_id, _ = await pensioner(intake)
        [right] = (await call(intake, "GET", f"/v1/beneficiaries/{beneficiary_id}", "bhxh")).json()[
            "entitlements"
        ]
        stopped = await call(
            intake,
            "POST",
            f"/v1/entitlements/{right['entitlement_id']}/stop",
            "bhxh",
            json={"reason": "DEATH", "effective_period": "2023-06"},
        )
        assert stopped.status_code == 200, stopped.text
        before = await footprint(intake, beneficiary_id)
        response = await call(
            intake,
            "PUT",
            f"/v1/beneficiaries/{beneficiary_id}/payment-method",
            "bhxh",
            json={
                "method": "OWN_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": "123400005678",
            },
        )
        assert response.status_code == 403, response.text
        assert await footprint(intake, beneficiary_id) == before

    async def test_a_second_agencys_approval_keeps_the_method_the_paying_agency_set(self, intake):
        beneficiary_id, row = await pensioner(intake)
        stranger = builders.cccd(builders.date(1990, 1, 1))
        applicant = {
            "national_id": row["national_id"],
            "full_name": row["full_name"],
            "date_of_birth": row["date_of_birth"],
        }
        body = builders.claim(
            "OVERSEAS_LABOUR", applicant=applicant, payment=representative(stranger)
        )
        filed = await call(intake, "POST", "/v1/claims", "portal", json=body)
        assert filed.status_code == 201, filed.text
        assert filed.json()["beneficiary_id"] == beneficiary_id
        before = await footprint(intake, beneficiary_id)
        approval = {
            "outcome": "APPROVED",
            "agency": "ESC",
            "decision_number": "ESC-SECOND-1",
            "amount_per_installment": 12_000_000,
            "schedule": {"kind": "ONE_OFF", "start_period": "2023-05"},
        }
        decided = await call(
            intake, "POST", f"/v1/claims/{filed.json()['claim_id']}/decision", "esc", json=approval
        )
        assert decided.status_code == 200, decided.text
        # The claim is granted; where BHXH pays the pension stays BHXH's to change.
        assert decided.json()["payment_method_id"] is None
        after = await footprint(intake, beneficiary_id)
        assert (after[0], after[1], after[3]) == (before[0], before[1], before[3])

    async def test_upload_rows_for_people_another_agency_pays_are_refused(self, intake):
        bhxh_person, bhxh_row = await pensioner(intake)
        esc_person, _ = await overseas_worker(intake)
        esc_national_id = (
            await call(intake, "GET", f"/v1/beneficiaries/{esc_person}", "admin")
        ).json()["national_id"]
        before = await footprint(intake, bhxh_person)
        rows = [
            {
                "national_id": bhxh_row["national_id"],
                "payment_method": "OWN_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": "999900002222",
            },
            {
                "national_id": esc_national_id,
                "payment_method": "OWN_ACCOUNT",
                "bank_bin": builders.VIETCOMBANK,
                "account_number": "999900003333",
            },
        ]
        response = await call(
            intake, "POST", "/v1/payment-methods/uploads", "esc", json={"rows": rows}
        )
        assert response.status_code == 201, response.text
        report = response.json()
        assert (report["accepted"], report["rejected"]) == (1, 1), report
        assert report["rows"][0]["beneficiary_id"] == esc_person
        [refused] = report["rejections"]
        assert refused["row"] == 1
        assert refused["errors"] == [
            {
                "pointer": "/rows/0/national_id",
                "detail": "this beneficiary is not paid by ESC: only the paying agency "
                "may change the payment method",
            }
        ]
        after = await footprint(intake, bhxh_person)
        # The pensioner's methods and history are untouched; the one event is the ESC person's.
        assert (after[0], after[1], after[3]) == (before[0], before[1], before[3] + 1)


class TestClaimsAndEntitlements:
    async def test_a_decision_on_another_agencys_claim_is_forbidden(self, intake):
        filed = await call(intake, "POST", "/v1/claims", "portal", json=builders.claim("PENSION"))
        claim_id = filed.json()["claim_id"]
        approval = {
            "outcome": "APPROVED",
            "agency": "ESC",
            "decision_number": "ESC-1",
            "amount_per_installment": 5_000_000,
            "schedule": {"kind": "OPEN_MONTHLY", "start_period": "2023-05"},
        }
        response = await call(
            intake, "POST", f"/v1/claims/{claim_id}/decision", "esc", json=approval
        )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        claim = await call(intake, "GET", f"/v1/claims/{claim_id}", "admin")
        assert claim.json()["status"] == "RECEIVED"

    async def test_a_filer_cannot_decide_even_its_own_claim(self, intake):
        filed = await call(
            intake, "POST", "/v1/claims", "filer-decider", json=builders.claim("PENSION")
        )
        claim_id = filed.json()["claim_id"]
        approval = {
            "outcome": "APPROVED",
            "agency": "BHXH",
            "decision_number": "QD-SELF-1",
            "amount_per_installment": 5_000_000,
            "schedule": {"kind": "OPEN_MONTHLY", "start_period": "2023-05"},
        }
        response = await call(
            intake, "POST", f"/v1/claims/{claim_id}/decision", "filer-decider", json=approval
        )
        assert response.status_code == 403, response.text
        assert (await call(intake, "GET", f"/v1/claims/{claim_id}", "admin")).json()[
            "status"
        ] == "RECEIVED"

    async def test_another_agency_cannot_stop_an_entitlement(self, intake):
        beneficiary_id, _ = await pensioner(intake)
        [right] = (await call(intake, "GET", f"/v1/beneficiaries/{beneficiary_id}", "bhxh")).json()[
            "entitlements"
        ]
        response = await call(
            intake,
            "POST",
            f"/v1/entitlements/{right['entitlement_id']}/stop",
            "dolisa",
            json={"reason": "DEATH", "effective_period": "2023-06"},
        )
        assert response.status_code == 403, response.text
        again = await call(intake, "GET", f"/v1/entitlements/{right['entitlement_id']}", "bhxh")
        assert again.json()["status"] == "ACTIVE"

    async def test_reads_of_people_another_agency_pays_are_refused(self, intake):
        beneficiary_id, row = await pensioner(intake)
        [right] = (await call(intake, "GET", f"/v1/beneficiaries/{beneficiary_id}", "bhxh")).json()[
            "entitlements"
        ]
        for path in (
            f"/v1/beneficiaries/{beneficiary_id}",
            f"/v1/beneficiaries/{beneficiary_id}/payment-methods",
            f"/v1/entitlements/{right['entitlement_id']}",
        ):
            assert (await call(intake, "GET", path, "bhxh")).status_code == 200, path
            refused = await call(intake, "GET", path, "esc")
            assert refused.status_code == 403, (path, refused.text)
            assert row["full_name"] not in refused.text
        # A lookup by CCCD does not even say whether the person is registered.
        found = await call(
            intake,
            "POST",
            "/v1/beneficiaries/lookup",
            "bhxh",
            json={"national_id": row["national_id"]},
        )
        assert found.status_code == 200
        hidden = await call(
            intake,
            "POST",
            "/v1/beneficiaries/lookup",
            "esc",
            json={"national_id": row["national_id"]},
        )
        unknown = await call(
            intake,
            "POST",
            "/v1/beneficiaries/lookup",
            "esc",
            json={"national_id": builders.cccd(builders.date(1961, 2, 2))},
        )
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json()["detail"] == unknown.json()["detail"]

    async def test_agencies_read_the_claims_of_their_schemes_only(self, intake):
        pension = (
            await call(intake, "POST", "/v1/claims", "portal", json=builders.claim("PENSION"))
        ).json()
        overseas = (
            await call(
                intake, "POST", "/v1/claims", "portal", json=builders.claim("OVERSEAS_LABOUR")
            )
        ).json()
        assert (
            await call(intake, "GET", f"/v1/claims/{pension['claim_id']}", "bhxh")
        ).status_code == 200
        assert (
            await call(intake, "GET", f"/v1/claims/{pension['claim_id']}", "esc")
        ).status_code == 403
        listed = await call(intake, "GET", "/v1/claims", "esc")
        assert listed.status_code == 200
        assert {c["claim_id"] for c in listed.json()["items"]} == {overseas["claim_id"]}
        assert (
            await call(intake, "GET", "/v1/claims", "esc", params={"agency": "BHXH"})
        ).status_code == 403

    async def test_the_portal_reads_its_own_claims_only(self, intake):
        mine = (
            await call(intake, "POST", "/v1/claims", "portal", json=builders.claim("PENSION"))
        ).json()
        theirs = (
            await call(intake, "POST", "/v1/claims", "other-portal", json=builders.claim("PENSION"))
        ).json()
        assert (
            await call(intake, "GET", f"/v1/claims/{mine['claim_id']}", "portal")
        ).status_code == 200
        assert (
            await call(intake, "GET", f"/v1/claims/{theirs['claim_id']}", "portal")
        ).status_code == 403
        listed = await call(intake, "GET", "/v1/claims", "portal")
        assert {c["claim_id"] for c in listed.json()["items"]} == {mine["claim_id"]}
        # The administrator (no agency, registry-wide reads) sees both.
        every = await call(intake, "GET", "/v1/claims", "admin")
        assert {mine["claim_id"], theirs["claim_id"]} <= {
            c["claim_id"] for c in every.json()["items"]
        }


class TestMasking:
    async def test_names_dates_of_birth_and_si_numbers_are_masked_without_pii_read(self, intake):
        beneficiary_id, row = await pensioner(intake)
        masked = (await call(intake, "GET", f"/v1/beneficiaries/{beneficiary_id}", "bhxh")).json()
        for secret in (
            row["full_name"],
            row["date_of_birth"],
            row["si_number"],
            row["national_id"],
        ):
            assert secret not in str(masked), secret
        assert masked["full_name"].split()[0][0] == row["full_name"].split()[0][0]
        assert masked["date_of_birth"] == row["date_of_birth"][:4] + "-**-**"
        assert masked["si_number"].endswith(row["si_number"][-2:]) and "*" in masked["si_number"]
        assert row["full_name"] not in str(masked["payment_method"])
        clear = (await call(intake, "GET", f"/v1/beneficiaries/{beneficiary_id}", "admin")).json()
        assert (clear["full_name"], clear["date_of_birth"], clear["si_number"]) == (
            row["full_name"],
            row["date_of_birth"],
            row["si_number"],
        )
        assert clear["payment_method"]["account_holder_name"] == row["full_name"]

    async def test_a_claims_applicant_is_masked_without_pii_read(self, intake):
        body = builders.claim("PENSION")
        claim_id = (await call(intake, "POST", "/v1/claims", "portal", json=body)).json()[
            "claim_id"
        ]
        applicant = (await call(intake, "GET", f"/v1/claims/{claim_id}", "portal")).json()[
            "applicant"
        ]
        for key in ("national_id", "full_name", "date_of_birth", "si_number"):
            assert applicant[key] != body["applicant"][key], key
        listed = (await call(intake, "GET", "/v1/claims", "bhxh")).json()["items"]
        assert body["applicant"]["full_name"] not in str(listed)
        clear = (await call(intake, "GET", f"/v1/claims/{claim_id}", "admin")).json()["applicant"]
        assert clear == body["applicant"]

    async def test_a_representatives_name_is_masked_without_pii_read(self, intake):
        beneficiary_id, _ = await pensioner(intake)
        rep = builders.cccd(builders.date(1980, 3, 3))
        body = representative(rep)
        set_ = await call(
            intake, "PUT", f"/v1/beneficiaries/{beneficiary_id}/payment-method", "bhxh", json=body
        )
        assert set_.status_code == 200, set_.text
        methods = (
            await call(intake, "GET", f"/v1/beneficiaries/{beneficiary_id}/payment-methods", "bhxh")
        ).json()
        assert "Kẻ Lạ Mặt" not in str(methods)
        clear = (
            await call(
                intake, "GET", f"/v1/beneficiaries/{beneficiary_id}/payment-methods", "admin"
            )
        ).json()
        assert "Kẻ Lạ Mặt" in str(clear)
