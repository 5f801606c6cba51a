"""Who pays a person in a period: the rule in Python (`ownership.is_open`) and its SQL twin
(`repository.paying_agencies`) agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date

from services.intake.adapters import repository
from services.intake.adapters.orm import beneficiaries, entitlements
from services.intake.domain.entitlements import ACTIVE, STOPPED
from services.intake.service_layer import ownership
from shared.clock import utcnow

# (agency, status, stop effective period)
RIGHTS = [
    ("BHXH", ACTIVE, None),
    ("DOLISA", STOPPED, "2024-06"),
    ("ESC", STOPPED, "2024-03"),
]
PERIODS = ["2024-01", "2024-02", "2024-03", "2024-05", "2024-06", "2024-07"]


class TestPayingAgencies:
    async def test_the_sql_twin_agrees_with_the_rule(self, intake_on_both):
        engine = intake_on_both.app.state.runtime.engine
        person = str(uuid.uuid4())
        now = utcnow()
        rows = [
            {
                "id": str(uuid.uuid4()),
                "beneficiary_id": person,
                "claim_id": None,
                "scheme": f"S{n}",
                "agency": agency,
                "decision_number": f"QD-{uuid.uuid4().hex[:8]}",
                "amount_per_installment": 1,
                "schedule_kind": "OPEN_MONTHLY",
                "start_period": "2023-01",
                "installments": None,
                "status": status,
                "stop_reason": "OTHER" if stop else None,
                "stop_effective_period": stop,
                "stopped_at": now if stop else None,
                "commune_code": "08707",
                "commune_list_date": date(2023, 5, 7),
                "source": "ROLL",
                "client_id": "test",
                "granted_at": now,
            }
            for n, (agency, status, stop) in enumerate(RIGHTS)
        ]
        async with engine.begin() as conn:
            await conn.execute(
                beneficiaries.insert().values(
                    id=person,
                    national_id="026085001122",
                    full_name="Trần Thị Hoa",
                    date_of_birth=date(1985, 1, 1),
                    commune_code="08707",
                    commune_list_date=date(2023, 5, 7),
                    registered_via="ROLL",
                    registered_at=now,
                )
            )
            await conn.execute(entitlements.insert(), rows)
        async with engine.connect() as conn:
            for period in PERIODS:
                paying = await repository.paying_agencies(conn, [person], period)
                expected = ownership.beneficiary_owner(rows, period).agencies
                assert paying.get(person, frozenset()) == expected, period
