"""Intake's population-registry adapter against the sandbox's registry (a real server): batch
checks in requests of at most 1,000, retries with backoff through injected 5xx and timeouts,
and failures that name no person."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from services.intake.adapters.population import (
    HttpPopulationRegistry,
    IdentityQuery,
    RegistryRefused,
    RegistryUnavailable,
)
from services.intake.domain import revalidation as rules
from tests.support.sandbox import SandboxAdmin, SandboxProcess

NAME = "Đặng Thị Hương"


@pytest.fixture(scope="module")
def registry_process() -> Iterator[SandboxProcess]:
    with SandboxProcess(callback_base="http://127.0.0.1:9") as process:
        yield process


@pytest.fixture
async def admin(registry_process: SandboxProcess) -> AsyncIterator[SandboxAdmin]:
    admin = SandboxAdmin(registry_process.url)
    await admin.reset()
    yield admin
    await admin.set_faults()
    await admin.aclose()


def queries(count: int) -> list[IdentityQuery]:
    return [IdentityQuery(f"0011990{n:05d}", NAME) for n in range(count)]


async def checked(process: SandboxProcess, persons, **options):
    registry = HttpPopulationRegistry(process.url, backoff_base_seconds=0.01, **options)
    try:
        return registry, await registry.check(persons)
    finally:
        await registry.aclose()


class TestChecks:
    async def test_more_than_a_request_holds_is_asked_in_several(self, registry_process, admin):
        persons = queries(1_500)
        await admin.seed_population(
            [
                {"national_id": q.national_id, "full_name": NAME, "date_of_birth": "1990-01-01"}
                for q in persons[::2]
            ]
        )
        registry, answers = await checked(registry_process, persons)
        assert registry.requests_made == 2
        assert [a.found for a in answers] == [n % 2 == 0 for n in range(1_500)]
        assert {rules.outcome(a) for a in answers} == {rules.CONFIRMED, rules.NOT_FOUND}


class TestFaults:
    async def test_injected_5xx_are_retried(self, registry_process, admin):
        await admin.seed_population(
            [{"national_id": "001199000000", "full_name": NAME, "date_of_birth": "1990-01-01"}]
        )
        await admin.set_faults(error_5xx_rate=1.0, fault_budget=2)
        registry, [answer] = await checked(registry_process, queries(1))
        assert (registry.retries, answer.found) == (2, True)

    async def test_a_held_answer_times_out_and_is_asked_again(self, registry_process, admin):
        await admin.set_faults(timeout_rate=1.0, timeout_hold_seconds=2.0, fault_budget=1)
        registry, [answer] = await checked(registry_process, queries(1), timeout_seconds=0.3)
        assert registry.retries == 1 and answer.found is False

    async def test_a_registry_that_never_answers_fails_without_naming_anyone(
        self, registry_process, admin, caplog
    ):
        await admin.set_faults(error_5xx_rate=1.0)
        caplog.set_level(logging.DEBUG)
        with pytest.raises(RegistryUnavailable) as failure:
            await checked(registry_process, queries(3), max_attempts=3)
        text = str(failure.value) + caplog.text
        assert "HTTP 503" in str(failure.value)
        for q in queries(3):
            assert q.national_id not in text
        assert NAME not in text and "DANG" not in text

    async def test_a_refused_request_is_not_retried_and_names_nobody(self, registry_process, admin):
        registry = HttpPopulationRegistry(registry_process.url, backoff_base_seconds=0.01)
        try:
            with pytest.raises(RegistryRefused) as failure:
                await registry.check([IdentityQuery("12345", NAME)])  # not a CCCD: a 422
        finally:
            await registry.aclose()
        assert registry.requests_made == 1
        assert "12345" not in str(failure.value) and NAME not in str(failure.value)
