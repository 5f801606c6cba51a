"""Intake's beneficiary topic is kept for ever: the v1 beneficiary and payment-method events
written before v2 (with the CCCD, date of birth and SI number v2 leaves out) are still applied."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from services.payout.adapters.orm import (
    beneficiaries,
    payment_methods,
    processed_messages,
    verifications,
)
from shared.events.contracts import (
    BeneficiaryRegisteredV1,
    PaymentMethodChangedV1,
    RepresentativeV1,
)
from tests.payout.harness import COMMUNE, LIST_2023, VCB, intake_events, people


class TestVersionOneEvents:
    async def test_v1_events_apply_as_v2_would(self, payout):
        stack = await payout(run_workers=False)
        person = people(1, bank_bin=VCB)[0]
        _, granted = intake_events(person, start_period="2031-01", method=False)
        now = datetime.now(UTC)
        registered = BeneficiaryRegisteredV1(
            beneficiary_id=person.beneficiary_id,
            national_id="026190004567",
            full_name=person.name,
            date_of_birth=date(1955, 3, 1),
            si_number="2612345678",
            commune_code=COMMUNE,
            commune_list_date=LIST_2023,
            registered_via="ROLL",
            registered_at=now,
        )
        method = PaymentMethodChangedV1(
            beneficiary_id=person.beneficiary_id,
            method_id=person.method_id,
            method="AUTHORISED_ACCOUNT",
            bank_bin=VCB,
            account_number=person.account_number,
            account_holder_name="Trần Thị Hoa",
            representative=RepresentativeV1(
                national_id="026190009876",
                full_name="Trần Thị Hoa",
                relationship="con",
                power_of_attorney_ref="UQ-1",
                valid_from=date(2030, 1, 1),
            ),
            status="PENDING_VERIFICATION",
            channel="ROLL",
            changed_at=now,
        )
        await stack.feed([registered, granted, method])

        async with stack.runtime.session_factory() as session:
            name = (await session.execute(select(beneficiaries.c.full_name))).scalar_one()
            kept = (await session.execute(select(payment_methods))).mappings().one()
            expected = (await session.execute(select(verifications.c.expected_name))).scalar_one()
            applied = len((await session.execute(select(processed_messages))).all())
        assert name == person.name
        assert (kept["method"], kept["representative_name"]) == (
            "AUTHORISED_ACCOUNT",
            "Trần Thị Hoa",
        )
        assert expected == "Trần Thị Hoa"
        assert applied == 3
