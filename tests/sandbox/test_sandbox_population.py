"""The sandbox's population registry over plain HTTP: seeding, batch identity checks, the
faults injected around them, and its storage on disk."""

from __future__ import annotations

import tracemalloc
from datetime import date

import httpx
import pytest

from services.sandbox.population import MAX_CHECKS_PER_REQUEST, PopulationRegistry
from services.sandbox.store import PersonStore

CHECKS = "/population/identity-checks"


def person(n: int, **overrides):
    return {
        "national_id": f"0261950{n:05d}",
        "full_name": "Nguyễn Văn An",
        "date_of_birth": "1950-03-04",
        **overrides,
    }


async def check(sandbox, persons):
    response = await sandbox.http.post(CHECKS, json={"persons": persons})
    assert response.status_code == 200, response.text
    return response.json()["results"]


class TestChecks:
    async def test_seeded_person_alive_and_matching_is_found(self, sandbox):
        await sandbox.admin.seed_population([person(1)])
        [answer] = await check(
            sandbox,
            [
                {
                    "national_id": "026195000001",
                    "full_name": "NGUYEN VAN AN",
                    "date_of_birth": "1950-03-04",
                }
            ],
        )
        assert answer == {
            "national_id": "026195000001",
            "found": True,
            "status": "ALIVE",
            "date_of_death": None,
            "name_matches": True,
            "date_of_birth_matches": True,
        }

    async def test_deceased_person_answers_date_of_death(self, sandbox):
        await sandbox.admin.seed_population(
            [person(2, status="DECEASED", date_of_death=date(2026, 10, 3))]
        )
        [answer] = await check(
            sandbox, [{"national_id": "026195000002", "full_name": "Nguyễn Văn An"}]
        )
        assert answer["status"] == "DECEASED"
        assert answer["date_of_death"] == "2026-10-03"
        assert answer["date_of_birth_matches"] is None  # not asked

    async def test_other_name_or_birth_date_does_not_match(self, sandbox):
        await sandbox.admin.seed_population([person(3)])
        [by_name, by_birth] = await check(
            sandbox,
            [
                {"national_id": "026195000003", "full_name": "Nguyễn Văn Anh"},
                {
                    "national_id": "026195000003",
                    "full_name": "Nguyen  van an",
                    "date_of_birth": "1950-03-05",
                },
            ],
        )
        assert (by_name["found"], by_name["name_matches"]) == (True, False)
        assert (by_birth["name_matches"], by_birth["date_of_birth_matches"]) == (True, False)

    async def test_person_never_seeded_is_not_found(self, sandbox):
        [answer] = await check(
            sandbox, [{"national_id": "001099000000", "full_name": "Trần Thị B"}]
        )
        assert answer["found"] is False
        assert answer["status"] is None and answer["name_matches"] is None

    async def test_answers_follow_the_request_order(self, sandbox):
        await sandbox.admin.seed_population([person(n) for n in range(0, 20, 2)])
        asked = [
            {"national_id": f"0261950{n:05d}", "full_name": "Nguyễn Văn An"} for n in range(20)
        ]
        answers = await check(sandbox, asked)
        assert [a["national_id"] for a in answers] == [a["national_id"] for a in asked]
        assert [a["found"] for a in answers] == [n % 2 == 0 for n in range(20)]

    async def test_more_than_the_limit_in_one_request_is_refused(self, sandbox):
        asked = [
            {"national_id": f"0261950{n:05d}", "full_name": "A"}
            for n in range(MAX_CHECKS_PER_REQUEST + 1)
        ]
        response = await sandbox.http.post(CHECKS, json={"persons": asked})
        assert response.status_code == 422
        assert response.json()["code"] == "INVALID_REQUEST"

    async def test_the_limit_itself_is_answered(self, sandbox):
        asked = [
            {"national_id": f"0261950{n:05d}", "full_name": "A"}
            for n in range(MAX_CHECKS_PER_REQUEST)
        ]
        assert len(await check(sandbox, asked)) == MAX_CHECKS_PER_REQUEST

    async def test_malformed_cccd_is_refused(self, sandbox):
        response = await sandbox.http.post(
            CHECKS, json={"persons": [{"national_id": "12345", "full_name": "A"}]}
        )
        assert response.status_code == 422


class TestSeeding:
    async def test_seeding_replaces_a_person_and_counts(self, sandbox):
        assert await sandbox.admin.seed_population([person(1), person(2)]) == 2
        await sandbox.admin.seed_population(
            [person(1, status="DECEASED", date_of_death="2026-01-02")]
        )
        stats = await sandbox.admin.population()
        assert stats["persons"] == 2
        [answer] = await check(
            sandbox, [{"national_id": "026195000001", "full_name": "Nguyễn Văn An"}]
        )
        assert answer["status"] == "DECEASED"

    async def test_living_person_with_a_date_of_death_is_refused(self, sandbox):
        response = await sandbox.http.post(
            "/admin/population", json=[person(1, date_of_death="2026-01-02")]
        )
        assert response.status_code == 422
        assert (await sandbox.admin.population())["persons"] == 0

    async def test_reset_forgets_everyone(self, sandbox):
        await sandbox.admin.seed_population([person(1)])
        await sandbox.admin.reset()
        assert (await sandbox.admin.population())["persons"] == 0
        [answer] = await check(
            sandbox, [{"national_id": "026195000001", "full_name": "Nguyễn Văn An"}]
        )
        assert answer["found"] is False


class TestFaults:
    async def test_injected_5xx_answers_nothing_then_recovers(self, sandbox):
        await sandbox.admin.seed_population([person(1)])
        await sandbox.admin.set_faults(error_5xx_rate=1.0, fault_budget=1)
        asked = [{"national_id": "026195000001", "full_name": "Nguyễn Văn An"}]
        refused = await sandbox.http.post(CHECKS, json={"persons": asked})
        assert refused.status_code == 503
        assert (await check(sandbox, asked))[0]["found"] is True
        assert (await sandbox.admin.population())["checks"] == 1

    async def test_injected_timeout_holds_the_answer(self, sandbox):
        await sandbox.admin.set_faults(timeout_rate=1.0, timeout_hold_seconds=2, fault_budget=1)
        asked = [{"national_id": "026195000001", "full_name": "A"}]
        with pytest.raises(httpx.TimeoutException):
            await sandbox.http.post(CHECKS, json={"persons": asked}, timeout=0.3)


class TestStorage:
    def test_a_province_of_persons_is_kept_on_disk(self, tmp_path):
        registry = PopulationRegistry(PersonStore(tmp_path))
        names = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung"]
        tracemalloc.start()
        registry.seed(
            (f"{n:012d}", names[n % 4], date(1950, 1, 1 + n % 28), "ALIVE", None)
            for n in range(100_000)
        )
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(registry) == 100_000
        assert peak < 8 * 1024 * 1024, peak  # in memory they took 18 MB
        [answer] = registry.check([("000000000005", "NGUYEN VAN AN", date(1950, 1, 6))])
        assert (answer.found, answer.name_matches, answer.date_of_birth_matches) == (
            True,
            False,
            True,
        )
        registry.reset()
        assert list(tmp_path.iterdir()) == []
