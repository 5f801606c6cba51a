"""People who sign in: registration by an administrator (roles bound to an agency and communes,
never a hash shown), password sign-in (right, wrong, unknown, inactive: the same 401 problem),
the lockout after repeated failures, and the development users. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.intake.adapters.orm import audit_log, users
from services.intake.service_layer.users import DEMO_USERS
from shared.authority import PEOPLE, PERSON_ROLES
from shared.clock import utcnow
from tests.support import tokens

PROBLEM = "application/problem+json"
ADMIN = "administrator"


def _user(**override) -> dict:
    body = {
        "username": "bhxh.checker.2",
        "password": "correct horse battery",
        "name": "Nguyễn Văn Kiểm",
        "roles": ["checker"],
        "agency": "BHXH",
    }
    body.update(override)
    return {k: v for k, v in body.items() if v is not None}


async def _sign_in(intake, username: str, password: str):
    return await intake.http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


def _same(answer) -> dict:
    """A problem without its correlation id (each answer has its own)."""
    return {k: v for k, v in answer.json().items() if k != "correlation_id"}


async def _admin(intake) -> dict[str, str]:
    answer = await _sign_in(intake, ADMIN, DEMO_USERS[ADMIN].password)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


class TestRegistration:
    async def test_an_administrator_registers_a_checker_and_no_hash_is_shown(self, intake_on_both):
        intake = intake_on_both
        headers = await _admin(intake)
        created = await intake.http.post("/v1/users", json=_user(), headers=headers)
        assert created.status_code == 201, created.text
        view = created.json()
        assert view["roles"] == ["checker"] and view["agency"] == "BHXH" and view["active"]
        listed = await intake.http.get("/v1/users", headers=headers)
        assert listed.status_code == 200
        names = [u["username"] for u in listed.json()["users"]]
        assert "bhxh.checker.2" in names and set(DEMO_USERS) <= set(names)
        text = created.text + listed.text
        assert "password" not in text and "scrypt" not in text
        [entry] = await intake.rows(
            select(audit_log).where(
                audit_log.c.action == "user.registered", audit_log.c.entity_id == "bhxh.checker.2"
            )
        )
        assert entry.client_id == ADMIN and "correct horse" not in str(entry.changes)

    @pytest.mark.parametrize(
        ("override", "pointer"),
        [
            ({"agency": None}, "/agency"),
            ({"roles": ["maker"], "agency": None}, "/agency"),
            ({"roles": ["post-office"], "agency": "BHXH"}, "/communes"),
            ({"roles": ["commune-official"], "agency": "DOLISA", "communes": []}, "/communes"),
            ({"roles": ["post-office"], "communes": ["99999"]}, "/communes/0"),
            ({"roles": ["superuser"]}, "/roles/0"),
            ({"roles": []}, "/roles"),
            ({"agency": "MOF"}, "/agency"),
            ({"password": "short"}, "/password"),
            ({"username": "has space"}, "/username"),
        ],
        ids=[
            "checker without agency",
            "maker without agency",
            "post office without communes",
            "commune official without communes",
            "unknown commune",
            "unknown role",
            "no role",
            "unknown agency",
            "short password",
            "bad username",
        ],
    )
    async def test_a_user_who_could_not_act_is_refused_with_a_422_problem(
        self, intake_on_both, override, pointer
    ):
        intake = intake_on_both
        response = await intake.http.post(
            "/v1/users", json=_user(**override), headers=await _admin(intake)
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert pointer in [e["pointer"] for e in response.json()["errors"]]
        assert "correct horse" not in response.text
        assert await intake.count(users, users.c.username == _user(**override)["username"]) == 0

    async def test_leaders_and_administrators_need_no_agency(self, intake_on_both):
        intake = intake_on_both
        headers = await _admin(intake)
        for i, role in enumerate(("leader", "administrator")):
            body = _user(username=f"no-agency-{i}", roles=[role], agency=None)
            assert (
                await intake.http.post("/v1/users", json=body, headers=headers)
            ).status_code == 201

    async def test_one_officer_may_be_maker_and_checker(self, intake_on_both):
        # A small office: payout's four-eyes rule keeps them from approving their own part.
        intake = intake_on_both
        body = _user(username="bhxh.officer.2", roles=["maker", "checker"])
        created = await intake.http.post("/v1/users", json=body, headers=await _admin(intake))
        assert created.status_code == 201, created.text
        document = (await _sign_in(intake, "bhxh.officer.2", body["password"])).json()
        principal = intake.app.state.token_verifier.verify(document["access_token"])
        assert principal.roles == {"maker", "checker"}
        assert {"cycles:prepare", "cycles:approve"} <= set(document["scope"].split())

    async def test_a_taken_username_is_a_conflict(self, intake_on_both):
        intake = intake_on_both
        headers = await _admin(intake)
        assert (
            await intake.http.post("/v1/users", json=_user(), headers=headers)
        ).status_code == 201
        again = await intake.http.post("/v1/users", json=_user(), headers=headers)
        assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)

    async def test_only_users_write_manages_users(self, intake_on_both):
        intake = intake_on_both
        for who in ("bhxh", "admin"):  # an agency's client, intake's administrator client
            for method in ("GET", "POST"):
                response = await intake.http.request(
                    method, "/v1/users", json=_user(), headers=intake.auth(who)
                )
                assert response.status_code == 403, (who, method, response.text)
        checker = await _sign_in(intake, "bhxh-checker", DEMO_USERS["bhxh-checker"].password)
        headers = {"Authorization": f"Bearer {checker.json()['access_token']}"}
        assert (await intake.http.get("/v1/users", headers=headers)).status_code == 403


class TestSignIn:
    async def test_the_right_password_gives_a_person_token_of_the_roles(self, intake_on_both):
        intake = intake_on_both
        answer = await _sign_in(intake, "bhxh-maker", DEMO_USERS["bhxh-maker"].password)
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert frozenset(document["scope"].split()) == PERSON_ROLES["maker"]
        principal = intake.app.state.token_verifier.verify(document["access_token"])
        assert principal.is_person and principal.roles == {"maker"}
        assert principal.agency == "BHXH" and principal.name == DEMO_USERS["bhxh-maker"].name
        assert principal.client_id == "bhxh-maker"
        claims = await intake.http.get(
            "/v1/claims", headers={"Authorization": f"Bearer {document['access_token']}"}
        )
        assert claims.status_code == 200, claims.text

    async def test_wrong_password_and_unknown_user_answer_the_same(self, intake_on_both):
        intake = intake_on_both
        wrong = await _sign_in(intake, "bhxh-maker", "not-the-password")
        unknown = await _sign_in(intake, "nobody-at-all", "not-the-password")
        for answer in (wrong, unknown):
            assert answer.status_code == 401
            assert answer.headers["content-type"].startswith(PROBLEM)
            assert "access_token" not in answer.json()
        assert _same(wrong) == _same(unknown)
        assert "not-the-password" not in wrong.text

    async def test_an_inactive_user_cannot_sign_in(self, intake_on_both):
        intake = intake_on_both
        body = _user(username="away", active=False)
        created = await intake.http.post("/v1/users", json=body, headers=await _admin(intake))
        assert created.status_code == 201 and created.json()["active"] is False
        answer = await _sign_in(intake, "away", body["password"])
        assert answer.status_code == 401
        assert _same(answer) == _same(await _sign_in(intake, "away", "wrong-password"))

    async def test_five_failures_lock_the_account_even_against_the_right_password(
        self, intake_on_both
    ):
        intake = intake_on_both
        password = DEMO_USERS["esc-maker"].password
        for _ in range(4):
            assert (await _sign_in(intake, "esc-maker", "wrong-password")).status_code == 401
        # Four failures: the right password still opens it, and resets the count.
        assert (await _sign_in(intake, "esc-maker", password)).status_code == 200
        for _ in range(5):
            assert (await _sign_in(intake, "esc-maker", "wrong-password")).status_code == 401
        locked = await _sign_in(intake, "esc-maker", password)
        assert locked.status_code == 401, "locked: not even the right password"
        assert _same(locked) == _same(await _sign_in(intake, "nobody", "x" * 12))
        [row] = await intake.rows(select(users).where(users.c.username == "esc-maker"))
        assert row.locked_until is not None
        # The lock lasts its 15 minutes; once they are over the right password opens it again.
        async with intake.app.state.runtime.engine.begin() as conn:
            await conn.execute(
                update(users)
                .where(users.c.username == "esc-maker")
                .values(locked_until=utcnow() - timedelta(seconds=1))
            )
        assert (await _sign_in(intake, "esc-maker", password)).status_code == 200

    async def test_concurrent_failures_all_count(self, intake_on_both):
        intake = intake_on_both
        answers = await asyncio.gather(
            *(_sign_in(intake, "dolisa-maker", "wrong-password") for _ in range(5))
        )
        assert all(a.status_code == 401 for a in answers)
        password = DEMO_USERS["dolisa-maker"].password
        assert (await _sign_in(intake, "dolisa-maker", password)).status_code == 401

    async def test_a_token_of_the_tests_issuer_is_not_intakes(self, intake_on_both):
        # The intake under test signs with a key of its own data directory, not the tests' key.
        intake = intake_on_both
        foreign = tokens.token({"claims:read"}, sub="outsider")
        answer = await intake.http.get("/v1/claims", headers={"Authorization": f"Bearer {foreign}"})
        assert answer.status_code == 401


def test_the_development_users_are_the_people_of_the_authority_table():
    assert set(DEMO_USERS) == set(PEOPLE)
    agencies = {u.agency for u in DEMO_USERS.values() if "maker" in u.roles}
    assert agencies == {"BHXH", "DOLISA", "ESC"}
    assert {u.agency for u in DEMO_USERS.values() if "checker" in u.roles} == agencies
    roles = set().union(*(u.roles for u in DEMO_USERS.values()))
    assert roles == set(PERSON_ROLES)
