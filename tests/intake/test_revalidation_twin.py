"""Who a revalidation pass checks: the Python rule "this entitlement pays in the period" and its
SQL twin agree, on SQLite and PostgreSQL, for every kind of schedule, stopped or not."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime

from sqlalchemy import select

from services.intake.adapters.orm import beneficiaries, entitlements
from services.intake.adapters.revalidation_repository import pays_in as pays_in_sql
from services.intake.domain.revalidation import pays_in
from services.intake.domain.schedules import Schedule

SCHEDULES = [
    ("OPEN_MONTHLY", "2026-03", None),
    ("ONE_OFF", "2026-05", None),
    ("FIXED_MONTHLY", "2025-11", 3),  # 2025-11 .. 2026-01: across a year
    ("FIXED_MONTHLY", "2026-02", 12),
]
STOPS = [("ACTIVE", None), ("STOPPED", "2026-05"), ("STOPPED", "2025-12")]
PERIODS = [
    "2025-10",
    "2025-11",
    "2026-01",
    "2026-02",
    "2026-03",
    "2026-04",
    "2026-05",
    "2027-01",
    "2027-02",
]


async def test_the_sql_twin_agrees_with_the_rule(intake_on_both):
    intake = intake_on_both
    now = datetime.now(UTC)
    cases = {}
    async with intake.app.state.runtime.engine.begin() as conn:
        for n, ((kind, start, count), (status, stop)) in enumerate(
            itertools.product(SCHEDULES, STOPS)
        ):
            person, right = str(uuid.uuid4()), str(uuid.uuid4())
            await conn.execute(
                beneficiaries.insert().values(
                    id=person,
                    national_id=f"0011990{n:05d}",
                    full_name="Nguyễn Văn An",
                    date_of_birth=date(1990, 1, 1),
                    commune_code="08707",
                    commune_list_date=date(2023, 5, 7),
                    registered_via="ROLL",
                    registered_at=now,
                )
            )
            await conn.execute(
                entitlements.insert().values(
                    id=right,
                    beneficiary_id=person,
                    scheme="PENSION",
                    agency="BHXH",
                    decision_number=f"D-{n}",
                    amount_per_installment=1_000_000,
                    schedule_kind=kind,
                    start_period=start,
                    installments=count,
                    status=status,
                    stop_reason="OTHER" if stop else None,
                    stop_effective_period=stop,
                    stopped_at=now if stop else None,
                    commune_code="08707",
                    commune_list_date=date(2023, 5, 7),
                    source="ROLL",
                    client_id="test",
                    granted_at=now,
                )
            )
            cases[right] = (Schedule(kind, start, count), status, stop)
    disagreements = []
    paid_somewhere = set()
    for period in PERIODS:
        rows = await intake.rows(select(entitlements.c.id).where(pays_in_sql(period)))
        by_sql = {r.id for r in rows}
        by_rule = {
            r
            for r, (schedule, status, stop) in cases.items()
            if pays_in(schedule, status, stop, period)
        }
        paid_somewhere |= by_rule
        if by_sql != by_rule:
            disagreements.append((period, sorted(by_sql ^ by_rule)))
    assert not disagreements
    assert len(paid_somewhere) > len(cases) // 2  # the cases do reach the periods asked about
