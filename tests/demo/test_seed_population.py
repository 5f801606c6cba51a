"""The demo seeds the population registry with everyone the province registers, so identity
revalidation confirms them before each period is paid."""

from __future__ import annotations

import httpx

from services.demo.loader import DemoDriver, Endpoints
from services.demo.province import generate
from tests.support.sandbox import SandboxProcess


async def test_everyone_the_province_registers_is_known_alive_or_as_recorded():
    province = generate(2023, beneficiaries=300, unemployment_scale=0.1)
    people = {e.person.national_id: e.person for e in province.roll}
    people.update({c.person.national_id: c.person for c in province.unemployment})
    dead = next(iter(people))
    with SandboxProcess(callback_base="http://127.0.0.1:9") as sandbox:
        endpoints = Endpoints("http://unused", "http://unused", "http://unused", sandbox.url)
        driver = DemoDriver(endpoints, bus=None, outbox_pending=None)  # type: ignore[arg-type]
        try:
            assert await driver.seed_population(province, deceased={dead}) == len(people)
        finally:
            await driver.close()
        asked = [
            {
                "national_id": p.national_id,
                "full_name": p.full_name,
                "date_of_birth": p.date_of_birth.isoformat(),
            }
            for p in list(people.values())[:1000]
        ]
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            answers = (
                await http.post("/population/identity-checks", json={"persons": asked})
            ).json()["results"]
    assert all(a["found"] and a["name_matches"] and a["date_of_birth_matches"] for a in answers)
    assert {a["national_id"] for a in answers if a["status"] == "DECEASED"} == {dead}
