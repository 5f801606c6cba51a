"""Contract payloads as intake and payout publish them, and their CloudEvent records."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from shared.admin_units import LIST_2023
from shared.events.contracts import (
    CONTRACT_BY_MODEL,
    ClaimDecided,
    ClaimReceived,
    Contract,
    CycleApproved,
    CycleOpened,
    EnvelopeSet,
    InstallmentCancelled,
    InstallmentScheduled,
    PaymentFailed,
    PaymentPaidInCash,
    PaymentReturned,
    PaymentSettled,
    PaymentSubmitted,
    SchemeTotal,
)
from shared.events.envelope import EVENT_TYPE_HEADER, CloudEvent
from shared.messaging.ports import OutgoingRecord, ReceivedRecord

URBAN_COMMUNE = "08707"  # Phường Tích Sơn, Thành phố Vĩnh Yên (243), 2023 list
RURAL_COMMUNE = "08731"  # Xã Thanh Trù, Thành phố Vĩnh Yên (243)
RURAL_OTHER_DISTRICT = "08770"  # Xã Hợp Lý, Huyện Lập Thạch (246)
TOWNSHIP = "08761"  # Thị trấn Lập Thạch: a township counts as urban
BASE = datetime(2023, 5, 10, 3, 0, tzinfo=UTC)


def facts(
    installment_id: str,
    beneficiary_id: str,
    period: str,
    amount: int,
    *,
    scheme: str = "PENSION",
    agency: str = "BHXH",
    channel: str = "OWN_ACCOUNT",
    commune: str = URBAN_COMMUNE,
    list_date: date = LIST_2023,
) -> dict:
    return {
        "installment_id": installment_id,
        "entitlement_id": f"ent-{beneficiary_id}-{scheme}",
        "beneficiary_id": beneficiary_id,
        "period": period,
        "amount": amount,
        "scheme": scheme,
        "agency": agency,
        "channel": channel,
        "counterparty": "VNPOST" if channel == "CASH_POST_OFFICE" else "970436",
        "commune_code": commune,
        "commune_list_date": list_date,
    }


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def scheduled(f: dict, when: datetime | None = None) -> InstallmentScheduled:
    return InstallmentScheduled(**f, scheduled_at=when or at(0))


def submitted(f: dict, when: datetime | None = None) -> PaymentSubmitted:
    return PaymentSubmitted(
        **f,
        batch_id="batch-1",
        end_to_end_id=f"e2e-{f['installment_id']}",
        submitted_at=when or at(1),
    )


def settled(f: dict, when: datetime | None = None) -> PaymentSettled:
    return PaymentSettled(
        **f,
        end_to_end_id=f"e2e-{f['installment_id']}",
        bank_reference="FT123",
        settled_at=when or at(2),
    )


def failed(f: dict, permanent: bool, when: datetime | None = None) -> PaymentFailed:
    return PaymentFailed(
        **f,
        reason_code="AC04" if permanent else "TIMEOUT",
        reason_text="closed account",
        permanent=permanent,
        failed_at=when or at(2),
    )


def returned(f: dict, when: datetime | None = None) -> PaymentReturned:
    return PaymentReturned(**f, reason_code="AC04", returned_at=when or at(3))


def paid_cash(f: dict, when: datetime | None = None) -> PaymentPaidInCash:
    moment = when or at(2)
    return PaymentPaidInCash(**f, paid_on=moment.date(), staff_id="vnpost-17", paid_at=moment)


def cancelled(f: dict, when: datetime | None = None) -> InstallmentCancelled:
    return InstallmentCancelled(**f, reason="entitlement stopped", cancelled_at=when or at(2))


def claim_received(
    claim_id: str,
    when: datetime,
    *,
    scheme: str = "UNEMPLOYMENT",
    agency: str = "ESC",
    commune: str = URBAN_COMMUNE,
    list_date: date = LIST_2023,
) -> ClaimReceived:
    return ClaimReceived(
        claim_id=claim_id,
        portal_dossier_id=f"G22.{claim_id}",
        beneficiary_id=f"ben-{claim_id}",
        scheme=scheme,
        agency=agency,
        commune_code=commune,
        commune_list_date=list_date,
        requested_method="OWN_ACCOUNT",
        received_at=when,
    )


def claim_decided(
    claim_id: str,
    when: datetime,
    outcome: str = "APPROVED",
    *,
    scheme: str = "UNEMPLOYMENT",
    agency: str = "ESC",
    commune: str = URBAN_COMMUNE,
    list_date: date = LIST_2023,
    amount: int | None = None,
) -> ClaimDecided:
    return ClaimDecided(
        claim_id=claim_id,
        beneficiary_id=f"ben-{claim_id}",
        scheme=scheme,
        agency=agency,
        outcome=outcome,
        decision_number=f"QD-{claim_id}" if outcome == "APPROVED" else None,
        entitlement_id=f"ent-{claim_id}" if outcome == "APPROVED" else None,
        amount_per_installment=amount,
        installments=3 if outcome == "APPROVED" else None,
        reason_code=None if outcome == "APPROVED" else "INELIGIBLE",
        commune_code=commune,
        commune_list_date=list_date,
        decided_at=when,
    )


def envelope_set(
    period: str, agency: str, scheme: str, amount: int, when: datetime | None = None
) -> EnvelopeSet:
    return EnvelopeSet(
        period=period,
        agency=agency,
        scheme=scheme,
        amount=amount,
        set_by="admin-1",
        set_at=when or BASE,
    )


def cycle_approved(
    period: str,
    agency: str,
    approval_id: str,
    totals: dict[str, tuple[int, int]],
    when: datetime | None = None,
    envelopes: dict[str, int] | None = None,
) -> CycleApproved:
    """`totals`: scheme -> (count, amount)."""
    return CycleApproved(
        period=period,
        agency=agency,
        approval_id=approval_id,
        digest="ab" * 32,
        approved_by="checker-1",
        totals=[
            SchemeTotal(
                scheme=scheme, count=count, amount=amount, envelope=(envelopes or {}).get(scheme)
            )
            for scheme, (count, amount) in totals.items()
        ],
        approved_at=when or BASE,
    )


def cycle_opened(period: str, when: datetime | None = None) -> CycleOpened:
    return CycleOpened(period=period, opened_at=when or BASE)


def cloud_event(payload: Contract, event_id: str | None = None) -> tuple[str, str, CloudEvent]:
    contract = CONTRACT_BY_MODEL[type(payload)]
    key = str(getattr(payload, contract.key_field))
    event = CloudEvent(
        type=contract.type,
        source="/benefits/test",
        subject=key,
        data=payload.model_dump(mode="json"),
        id=event_id or str(uuid.uuid4()),
    )
    return contract.topic, key, event


def record(payload: Contract, event_id: str | None = None) -> OutgoingRecord:
    topic, key, event = cloud_event(payload, event_id)
    return OutgoingRecord(
        topic, key.encode(), event.to_json(), ((EVENT_TYPE_HEADER, event.type.encode()),)
    )


def records(payloads: Iterable[Contract]) -> list[OutgoingRecord]:
    return [record(p) for p in payloads]


def as_received(outgoing: Sequence[OutgoingRecord], first_offset: int = 0) -> list[ReceivedRecord]:
    """Records as a consumer would receive them (for feeding the projection without a broker)."""
    return [
        ReceivedRecord(r.topic, 0, first_offset + i, r.key, r.value, r.headers)
        for i, r in enumerate(outgoing)
    ]
