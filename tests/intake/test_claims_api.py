"""The claims API on the real PostgreSQL: filing, idempotency, access, masking, validation,
decisions and stops."""

from __future__ import annotations

import copy

from sqlalchemy import select

from services.intake.adapters.orm import audit_log, beneficiaries, claims, entitlements, outbox
from tests.intake import builders

PROBLEM = "application/problem+json"


class TestFiling:
    async def test_filing_answers_201_and_records_the_claim(self, intake):
        body = builders.claim()
        response = await intake.post("/v1/claims", "portal", json=body)
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["status"] == "RECEIVED" and answer["agency"] == "BHXH"
        assert answer["portal_dossier_id"] == body["portal_dossier_id"]
        status = await intake.get(f"/v1/claims/{answer['claim_id']}", "portal")
        assert status.status_code == 200
        assert status.json()["status"] == "RECEIVED"
        assert await intake.count(claims) == 1

    async def test_same_dossier_same_body_replays_the_first_answer(self, intake):
        body = builders.claim()
        first = await intake.post("/v1/claims", "portal", json=body)
        again = await intake.post("/v1/claims", "portal", json=copy.deepcopy(body))
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert await intake.count(claims) == 1
        assert await intake.count(outbox) == 2  # beneficiary registered + claim received, once

    async def test_same_dossier_different_body_is_409(self, intake):
        body = builders.claim()
        await intake.post("/v1/claims", "portal", json=body)
        changed = copy.deepcopy(body)
        changed["payment"]["account_number"] = builders.account()
        response = await intake.post("/v1/claims", "portal", json=changed)
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"].endswith("/modified-request")
        assert "different request body" in problem["detail"]
        assert await intake.count(claims) == 1

    async def test_a_second_claim_of_the_same_person_attaches_to_the_same_beneficiary(self, intake):
        first = builders.claim()
        second = builders.claim("VOCATIONAL_TRAINING", applicant=first["applicant"])
        a = (await intake.post("/v1/claims", "portal", json=first)).json()
        b = (await intake.post("/v1/claims", "portal", json=second)).json()
        assert a["beneficiary_id"] == b["beneficiary_id"]
        assert await intake.count(beneficiaries) == 1

    async def test_name_stored_in_nfc(self, intake):
        body = builders.claim()
        body["applicant"]["full_name"] = (
            "Nguye\u0302\u0303n  Va\u0306n A\u0301nh"  # decomposed, double space
        )
        answer = (await intake.post("/v1/claims", "portal", json=body)).json()
        claim = (
            await intake.get(f"/v1/claims/{answer['claim_id']}", "admin")
        ).json()  # pii:read: unmasked
        assert claim["applicant"]["full_name"] == "Nguyễn Văn Ánh"


class TestAccess:
    async def test_no_token_is_401_problem(self, intake):
        response = await intake.http.post("/v1/claims", json=builders.claim())
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_bad_token_is_401(self, intake):
        response = await intake.http.get(
            "/v1/claims", headers={"Authorization": "Bearer not-a-jwt"}
        )
        assert response.status_code == 401

    async def test_missing_scope_is_403_problem(self, intake):
        response = await intake.post("/v1/claims", "bhxh", json=builders.claim())
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert "claims:write" in response.json()["detail"]
        decision = await intake.post(
            "/v1/claims/x/decision", "portal", json=builders.unemployment_approval()
        )
        assert decision.status_code == 403

    async def test_token_endpoint_issues_scoped_tokens_to_dev_clients(self, intake):
        response = await intake.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("bhxh", "bhxh-dev-secret"),
        )
        assert response.status_code == 200, response.text
        token = response.json()
        assert token["token_type"] == "Bearer"
        assert {"decisions:write", "roll:write", "agency:BHXH"} <= set(token["scope"].split())
        assert "pii:read" not in token["scope"]
        ok = await intake.http.get(
            "/v1/claims", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert ok.status_code == 200

    async def test_token_endpoint_refuses_wrong_secret_and_unknown_grant(self, intake):
        wrong = await intake.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "portal",
                "client_secret": "nope",
            },
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
        grant = await intake.http.post(
            "/oauth/token", data={"grant_type": "authorization_code"}, auth=("portal", "x")
        )
        assert grant.status_code == 400
        assert grant.json()["error"] == "unsupported_grant_type"
        scope = await intake.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "pii:read"},
            auth=("portal", "portal-dev-secret"),
        )
        assert scope.status_code == 400
        assert scope.json()["error"] == "invalid_scope"


class TestMasking:
    async def test_cccd_and_account_masked_without_pii_read(self, intake):
        body = builders.claim()
        answer = (await intake.post("/v1/claims", "portal", json=body)).json()
        national_id = body["applicant"]["national_id"]
        account = body["payment"]["account_number"]
        masked = (await intake.get(f"/v1/claims/{answer['claim_id']}", "portal")).json()
        assert masked["applicant"]["national_id"] == national_id[:3] + "*******" + national_id[-2:]
        assert masked["payment"]["account_number"] == "****" + account[-4:]
        assert national_id not in str(masked) and account not in str(masked)
        full = (await intake.get(f"/v1/claims/{answer['claim_id']}", "admin")).json()
        assert full["applicant"]["national_id"] == national_id
        assert full["payment"]["account_number"] == account

    async def test_audit_trail_never_holds_raw_pii(self, intake):
        body = builders.claim()
        answer = (await intake.post("/v1/claims", "portal", json=body)).json()
        trail = (
            await intake.get("/v1/audit", "admin", params={"entity_id": answer["claim_id"]})
        ).json()
        [entry] = trail["items"]
        assert entry["action"] == "claim.filed" and entry["client_id"] == "portal"
        assert body["applicant"]["national_id"] not in str(entry)
        assert body["payment"]["account_number"] not in str(entry)
        assert (await intake.get("/v1/audit", "bhxh")).status_code == 403


class TestValidation:
    async def test_invalid_cccd_is_422_pointing_at_the_field(self, intake):
        body = builders.claim()
        body["applicant"]["national_id"] = (
            "026" + "9" + body["applicant"]["national_id"][4:]
        )  # century 2300s
        response = await intake.post("/v1/claims", "portal", json=body)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        pointers = {e["pointer"] for e in response.json()["errors"]}
        assert pointers == {"/applicant/national_id"}
        assert await intake.count(claims) == 0 and await intake.count(beneficiaries) == 0

    async def test_missing_si_number_unknown_commune_and_cash_without_reason(self, intake):
        body = builders.claim()
        del body["applicant"]["si_number"]
        body["address"]["commune_code"] = "99999"
        body["payment"] = {"method": "CASH_POST_OFFICE"}
        response = await intake.post("/v1/claims", "portal", json=body)
        assert response.status_code == 422
        pointers = {e["pointer"] for e in response.json()["errors"]}
        assert pointers == {"/applicant/si_number", "/address/commune_code", "/payment/cash_reason"}

    async def test_schema_errors_carry_pointers_and_never_500(self, intake):
        response = await intake.post(
            "/v1/claims", "portal", json={"scheme": "LOTTERY", "applicant": {}}
        )
        assert response.status_code == 422
        pointers = {e["pointer"] for e in response.json()["errors"]}
        assert {"/scheme", "/portal_dossier_id", "/applicant/national_id"} <= pointers
        garbage = await intake.post(
            "/v1/claims",
            "portal",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert garbage.status_code == 422

    async def test_identity_mismatch_with_registered_person_leaves_nothing(self, intake):
        first = builders.claim()
        await intake.post("/v1/claims", "portal", json=first)
        second = builders.claim(applicant={**first["applicant"], "full_name": "Trần Thị Khác"})
        response = await intake.post("/v1/claims", "portal", json=second)
        assert response.status_code == 422
        assert [e["pointer"] for e in response.json()["errors"]] == ["/applicant/full_name"]
        assert await intake.count(claims) == 1
        assert (
            await intake.count(audit_log, audit_log.c.entity_type.not_in(["client", "user"])) == 2
        )  # the first filing only


class TestListing:
    async def test_filters_and_cursor_pagination(self, intake):
        ids = []
        for scheme in ["UNEMPLOYMENT"] * 3 + ["MERITORIOUS"] * 2:
            body = builders.claim(scheme)
            ids.append((await intake.post("/v1/claims", "portal", json=body)).json()["claim_id"])
        page = (
            await intake.get("/v1/claims", "portal", params={"scheme": "UNEMPLOYMENT", "limit": 2})
        ).json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = (
            await intake.get(
                "/v1/claims",
                "portal",
                params={"scheme": "UNEMPLOYMENT", "limit": 2, "cursor": page["next_cursor"]},
            )
        ).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        seen = [c["claim_id"] for c in page["items"] + rest["items"]]
        assert seen == ids[:3]
        assert all(c["scheme"] == "UNEMPLOYMENT" for c in page["items"] + rest["items"])
        bad = await intake.get("/v1/claims", "portal", params={"cursor": "garbage"})
        assert bad.status_code == 422


async def _filed(intake, scheme: str = "UNEMPLOYMENT", **overrides) -> dict:
    body = builders.claim(scheme, **overrides)
    response = await intake.post("/v1/claims", "portal", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class TestDecisions:
    async def test_unemployment_approval_following_the_rule(self, intake):
        claim = await _filed(intake)
        response = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision",
            "bhxh",
            json=builders.unemployment_approval(),
        )
        assert response.status_code == 200, response.text
        decided = response.json()
        assert decided["status"] == "APPROVED" and decided["entitlement_id"]
        assert decided["payment_method_id"]
        entitlement = (
            await intake.get(f"/v1/entitlements/{decided['entitlement_id']}", "bhxh")
        ).json()
        assert entitlement["amount_per_installment"] == 4_800_000
        assert entitlement["schedule"] == {
            "kind": "FIXED_MONTHLY",
            "start_period": "2023-05",
            "installments": 4,
        }
        status = (await intake.get(f"/v1/claims/{claim['claim_id']}", "portal")).json()
        assert status["status"] == "APPROVED"

    async def test_decision_breaking_the_unemployment_rule_is_refused_with_the_reason(self, intake):
        claim = await _filed(intake)
        # 60% of 40,000,000 is 24,000,000, over region II's cap of 5 x 4,160,000 = 20,800,000.
        body = builders.unemployment_approval(
            average_salary=40_000_000,
            amount_per_installment=24_000_000,
            contribution_months=30,
            schedule={"kind": "FIXED_MONTHLY", "start_period": "2023-05", "installments": 4},
        )
        response = await intake.post(f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=body)
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"].endswith("/rule-broken")
        assert problem["expected"] == {"amount_per_installment": 20_800_000, "installments": 3}
        assert {e["pointer"] for e in problem["errors"]} == {
            "/amount_per_installment",
            "/schedule/installments",
        }
        assert await intake.count(entitlements) == 0
        fewer = builders.unemployment_approval(contribution_months=11)
        not_eligible = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=fewer
        )
        assert not_eligible.status_code == 422
        assert not_eligible.json()["errors"][0]["pointer"] == "/contribution_months"

    async def test_decided_once_same_decision_replays_different_is_409(self, intake):
        claim = await _filed(intake)
        decision = builders.unemployment_approval()
        first = await intake.post(f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=decision)
        again = await intake.post(f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=decision)
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["Idempotent-Replayed"] == "true"
        reject = {
            "outcome": "REJECTED",
            "agency": "BHXH",
            "reason_code": "NOT_UNEMPLOYED",
            "reason_text": "Đã có việc làm",
        }
        conflict = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json=reject
        )
        assert conflict.status_code == 409
        assert await intake.count(entitlements) == 1

    async def test_rejection_and_wrong_agency(self, intake):
        claim = await _filed(intake, "MERITORIOUS")
        reject = {
            "outcome": "REJECTED",
            "agency": "BHXH",
            "reason_code": "NOT_ELIGIBLE",
            "reason_text": "Không đủ điều kiện",
        }
        wrong = await intake.post(f"/v1/claims/{claim['claim_id']}/decision", "admin", json=reject)
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["pointer"] == "/agency"
        other_agency = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision", "bhxh", json={**reject, "agency": "DOLISA"}
        )
        assert other_agency.status_code == 403
        ok = await intake.post(
            f"/v1/claims/{claim['claim_id']}/decision",
            "dolisa",
            json={**reject, "agency": "DOLISA"},
        )
        assert ok.status_code == 200 and ok.json()["status"] == "REJECTED"

    async def test_unknown_claim_is_404(self, intake):
        response = await intake.post(
            "/v1/claims/nope/decision", "bhxh", json=builders.unemployment_approval()
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


class TestStops:
    async def test_stop_from_a_period_once(self, intake):
        claim = await _filed(intake, "MERITORIOUS")
        approval = {
            "outcome": "APPROVED",
            "agency": "DOLISA",
            "decision_number": "QD-NCC-1",
            "amount_per_installment": 2_055_000,
            "schedule": {"kind": "OPEN_MONTHLY", "start_period": "2023-06"},
        }
        decided = (
            await intake.post(f"/v1/claims/{claim['claim_id']}/decision", "dolisa", json=approval)
        ).json()
        path = f"/v1/entitlements/{decided['entitlement_id']}/stop"
        stop = {"reason": "DEATH", "effective_period": "2024-02"}
        assert (
            await intake.post(path, "bhxh", json=stop)
        ).status_code == 403  # not BHXH's entitlement
        first = await intake.post(path, "dolisa", json=stop)
        assert first.status_code == 200 and first.json()["status"] == "STOPPED"
        assert first.json()["stop"]["effective_period"] == "2024-02"
        again = await intake.post(path, "dolisa", json=stop)
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        other = await intake.post(
            path, "dolisa", json={"reason": "OTHER", "effective_period": "2024-03"}
        )
        assert other.status_code == 409
        stops = await intake.rows(
            select(audit_log.c.action).where(audit_log.c.action == "entitlement.stopped")
        )
        assert len(stops) == 1
