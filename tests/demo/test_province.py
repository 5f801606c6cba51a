"""The generated province: the schemes in their national proportions, the article's
unemployment figures at their real size, and the year's phases sized before they run."""

from __future__ import annotations

from collections import Counter

from services.demo.loader import DemoDriver, Endpoints
from services.demo.province import ROLL_SCHEMES, generate


def test_the_rolls_follow_the_national_proportions_and_the_claims_the_article():
    province = generate(2023, beneficiaries=20_000, unemployment_scale=1.0)
    shares = Counter(entry.scheme for entry in province.roll)
    for scheme, weight in ROLL_SCHEMES:
        assert abs(shares[scheme] / 20_000 - weight) < 0.015, scheme
    assert len(province.unemployment) == 2_203
    assert sum(claim.approved for claim in province.unemployment) == 1_533
    assert {claim.filed_month for claim in province.unemployment} == {
        "2023-01",
        "2023-02",
        "2023-03",
    }


async def test_each_phase_of_the_year_has_its_size_before_it_runs():
    province = generate(2023, beneficiaries=3_000, unemployment_scale=0.1)
    seen: list[tuple[str, int, int]] = []
    driver = DemoDriver(
        Endpoints("http://intake", "http://payout", "http://reporting", "http://sandbox"),
        bus=None,  # type: ignore[arg-type]  # the plan reads nothing from the services
        outbox_pending=None,  # type: ignore[arg-type]
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    try:
        driver.plan(province, ["2023-01", "2023-02"])
        collected = sum(
            1
            for entry in province.roll
            if entry.methods[0].month in ("2023-01", "2023-02")
            and entry.methods[0].method != "CASH_POST_OFFICE"
        )
        assert driver.totals == {
            "bank accounts": len(province.accounts()),
            "roll": 3_000,
            "accounts": collected,
            "claims": sum(c.filed_month in ("2023-01", "2023-02") for c in province.unemployment),
        }
        driver.advance("roll", 2_000)
        driver.advance("roll", 1_000)
        assert seen == [("roll", 2_000, 3_000), ("roll", 3_000, 3_000)]
    finally:
        await driver.close()
