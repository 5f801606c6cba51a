"""Contracts carry their limits, and every consumer can keep what a producer may send.

The event contracts declare every length and range. On PostgreSQL (which, unlike SQLite, enforces
VARCHAR widths), each consumer's migrated columns that store a contract field must be at least as
wide as the field's max_length: a producer field made wider than its consumers fails here, not as
a dead-lettered event and a beneficiary who is never paid. The mapping below says, for every
string field of every event a consumer handles, where it is stored or that it is not; the test
checks that it is complete, so a new field has to be placed before it can ship.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime

import annotated_types
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.intake.bootstrap import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.consumers.account_verification import account_verification_consumer
from services.intake.consumers.cycles import cycle_consumer
from services.payout.bootstrap import MIGRATIONS as PAYOUT_MIGRATIONS
from services.payout.consumers.intake_view import intake_view_consumer
from services.payout.consumers.revalidation import revalidation_consumer
from services.reporting.bootstrap import MIGRATIONS as REPORTING_MIGRATIONS
from services.reporting.consumers.projections import projection_runner
from shared.events.contracts import CONTRACTS, Contract, contract_for
from shared.migrations import upgrade_to_head_async


@dataclass(frozen=True)
class Stored:
    """A column that keeps a contract field, after a fixed prefix of `prefix` characters."""

    service: str
    table: str
    column: str
    prefix: int = 0


NOT_STORED = ()  # read, compared or looked up, never kept

# "<model declaring the field>.<field>" -> where consumers keep it. Inherited fields are named by
# the model that declares them (PaymentFacts for every payment event, the v2 model for its v1).
STORAGE: dict[str, tuple[Stored, ...]] = {
    # payout.intake-view, from intake's beneficiary topic
    "BeneficiaryRegistered.beneficiary_id": (Stored("payout", "beneficiaries", "beneficiary_id"),),
    "BeneficiaryRegistered.full_name": (
        Stored("payout", "beneficiaries", "full_name"),
        Stored("payout", "verifications", "expected_name"),
        Stored("payout", "payment_attempts", "account_name"),
    ),
    "BeneficiaryRegistered.commune_code": (Stored("payout", "beneficiaries", "commune_code"),),
    "BeneficiaryRegistered.registered_via": NOT_STORED,
    "BeneficiaryRegisteredV1.national_id": NOT_STORED,
    "BeneficiaryRegisteredV1.si_number": NOT_STORED,
    "EntitlementGranted.entitlement_id": (
        Stored("payout", "entitlements", "entitlement_id"),
        Stored("payout", "installments", "entitlement_id"),
    ),
    "EntitlementGranted.beneficiary_id": (
        Stored("payout", "entitlements", "beneficiary_id"),
        Stored("payout", "installments", "beneficiary_id"),
    ),
    "EntitlementGranted.claim_id": NOT_STORED,
    "EntitlementGranted.scheme": (
        Stored("payout", "entitlements", "scheme"),
        Stored("payout", "installments", "scheme"),
    ),
    "EntitlementGranted.agency": (
        Stored("payout", "entitlements", "agency"),
        Stored("payout", "installments", "agency"),
    ),
    "EntitlementGranted.decision_number": (Stored("payout", "entitlements", "decision_number"),),
    "EntitlementGranted.commune_code": (
        Stored("payout", "entitlements", "commune_code"),
        Stored("payout", "installments", "commune_code"),
        Stored("payout", "payment_attempts", "commune_code"),
    ),
    "Schedule.kind": (Stored("payout", "entitlements", "schedule_kind"),),
    "Schedule.start_period": (
        Stored("payout", "entitlements", "start_period"),
        Stored("payout", "entitlements", "end_period"),
        Stored("payout", "installments", "period"),
    ),
    "EntitlementStopped.entitlement_id": NOT_STORED,
    "EntitlementStopped.beneficiary_id": NOT_STORED,
    "EntitlementStopped.reason": (
        Stored("payout", "entitlements", "stop_reason", prefix=len("ENTITLEMENT_STOPPED_")),
        Stored("payout", "installments", "reason_code", prefix=len("ENTITLEMENT_STOPPED_")),
    ),
    "EntitlementStopped.effective_period": (Stored("payout", "entitlements", "stop_period"),),
    "PaymentMethodChanged.beneficiary_id": (
        Stored("payout", "payment_methods", "beneficiary_id"),
        Stored("payout", "verifications", "beneficiary_id"),
    ),
    "PaymentMethodChanged.method_id": (
        Stored("payout", "payment_methods", "method_id"),
        Stored("payout", "verifications", "method_id"),
        Stored("payout", "installments", "method_id"),
    ),
    "PaymentMethodChanged.method": (
        Stored("payout", "payment_methods", "method"),
        Stored("payout", "installments", "channel"),
        Stored("payout", "payment_attempts", "channel"),
    ),
    "PaymentMethodChanged.bank_bin": (
        Stored("payout", "payment_methods", "bank_bin"),
        Stored("payout", "verifications", "bank_bin"),
        Stored("payout", "installments", "counterparty"),
        Stored("payout", "payment_attempts", "counterparty"),
    ),
    "PaymentMethodChanged.account_number": (
        Stored("payout", "payment_methods", "account_number"),
        Stored("payout", "verifications", "account_number"),
        Stored("payout", "payment_attempts", "account_number"),
    ),
    "PaymentMethodChanged.account_holder_name": (
        Stored("payout", "payment_methods", "account_holder_name"),
        Stored("payout", "verifications", "expected_name"),
        Stored("payout", "payment_attempts", "account_name"),
    ),
    "PaymentMethodChanged.cash_reason": (Stored("payout", "payment_methods", "cash_reason"),),
    "PaymentMethodChanged.status": NOT_STORED,  # payout keeps its own verification status
    "PaymentMethodChanged.channel": NOT_STORED,
    "Representative.full_name": (
        Stored("payout", "payment_methods", "representative_name"),
        Stored("payout", "verifications", "expected_name"),
        Stored("payout", "payment_attempts", "account_name"),
    ),
    "RepresentativeV1.national_id": NOT_STORED,
    "RepresentativeV1.relationship": NOT_STORED,
    "RepresentativeV1.power_of_attorney_ref": NOT_STORED,
    # reporting.projections, from intake's claim topic and payout's payment topic
    "ClaimReceived.claim_id": (Stored("reporting", "claim_facts", "claim_id"),),
    "ClaimReceived.portal_dossier_id": NOT_STORED,
    "ClaimReceived.beneficiary_id": NOT_STORED,
    "ClaimReceived.scheme": (
        Stored("reporting", "claim_facts", "received_scheme"),
        Stored("reporting", "claim_cube", "scheme"),
        Stored("reporting", "claim_rollup", "scheme"),
    ),
    "ClaimReceived.agency": (
        Stored("reporting", "claim_facts", "received_agency"),
        Stored("reporting", "claim_cube", "agency"),
        Stored("reporting", "claim_rollup", "agency"),
    ),
    "ClaimReceived.commune_code": (
        Stored("reporting", "claim_facts", "received_commune"),
        Stored("reporting", "claim_cube", "commune_code"),
    ),
    "ClaimReceived.requested_method": NOT_STORED,
    "ClaimDecided.claim_id": (Stored("reporting", "claim_facts", "claim_id"),),
    "ClaimDecided.beneficiary_id": NOT_STORED,
    "ClaimDecided.scheme": (
        Stored("reporting", "claim_facts", "decided_scheme"),
        Stored("reporting", "claim_cube", "scheme"),
        Stored("reporting", "claim_rollup", "scheme"),
    ),
    "ClaimDecided.agency": (
        Stored("reporting", "claim_facts", "decided_agency"),
        Stored("reporting", "claim_cube", "agency"),
        Stored("reporting", "claim_rollup", "agency"),
    ),
    "ClaimDecided.outcome": (Stored("reporting", "claim_facts", "outcome"),),
    "ClaimDecided.decision_number": NOT_STORED,
    "ClaimDecided.entitlement_id": NOT_STORED,
    "ClaimDecided.reason_code": NOT_STORED,
    "ClaimDecided.reason_text": NOT_STORED,
    "ClaimDecided.commune_code": (
        Stored("reporting", "claim_facts", "decided_commune"),
        Stored("reporting", "claim_cube", "commune_code"),
    ),
    "PaymentFacts.installment_id": (Stored("reporting", "payment_facts", "installment_id"),),
    "PaymentFacts.entitlement_id": NOT_STORED,
    "PaymentFacts.beneficiary_id": (
        Stored("reporting", "payment_facts", "beneficiary_id"),
        Stored("reporting", "payment_people", "beneficiary_id"),
    ),
    "PaymentFacts.period": (
        Stored("reporting", "payment_facts", "period"),
        Stored("reporting", "payment_people", "period"),
        Stored("reporting", "payment_cube", "period"),
        Stored("reporting", "payment_rollup", "period"),
    ),
    "PaymentFacts.scheme": (
        Stored("reporting", "payment_facts", "scheme"),
        Stored("reporting", "payment_people", "scheme"),
        Stored("reporting", "payment_cube", "scheme"),
        Stored("reporting", "payment_rollup", "scheme"),
    ),
    "PaymentFacts.agency": (
        Stored("reporting", "payment_facts", "agency"),
        Stored("reporting", "payment_people", "agency"),
        Stored("reporting", "payment_cube", "agency"),
        Stored("reporting", "payment_rollup", "agency"),
    ),
    "PaymentFacts.channel": (
        Stored("reporting", "payment_facts", "channel"),
        Stored("reporting", "payment_people", "channel"),
        Stored("reporting", "payment_cube", "channel"),
        Stored("reporting", "payment_rollup", "channel"),
    ),
    "PaymentFacts.counterparty": NOT_STORED,
    "PaymentFacts.commune_code": (
        Stored("reporting", "payment_facts", "commune_code"),
        Stored("reporting", "payment_people", "commune_code"),
        Stored("reporting", "payment_cube", "commune_code"),
    ),
    "PaymentSubmitted.batch_id": NOT_STORED,
    "PaymentSubmitted.end_to_end_id": NOT_STORED,
    "PaymentSettled.end_to_end_id": NOT_STORED,
    "PaymentSettled.bank_reference": NOT_STORED,
    "PaymentFailed.reason_code": NOT_STORED,
    "PaymentFailed.reason_text": NOT_STORED,
    "PaymentReturned.reason_code": NOT_STORED,
    "PaymentPaidInCash.staff_id": NOT_STORED,
    "InstallmentCancelled.reason": NOT_STORED,
    # intake.account-verification, from payout's account-verification topic
    "AccountVerified.beneficiary_id": NOT_STORED,  # looked up, with the method id
    "AccountVerified.method_id": NOT_STORED,
    "AccountVerified.bank_bin": NOT_STORED,
    "AccountVerificationFailed.beneficiary_id": NOT_STORED,
    "AccountVerificationFailed.method_id": NOT_STORED,
    "AccountVerificationFailed.reason": (Stored("intake", "payment_methods", "status_reason"),),
    "AccountFlagged.beneficiary_id": NOT_STORED,
    "AccountFlagged.method_id": NOT_STORED,
    "AccountFlagged.installment_id": NOT_STORED,
    "AccountFlagged.reason_code": (
        Stored("intake", "payment_methods", "status_reason", prefix=len("FLAGGED:")),
    ),
    "AccountFlagged.reason_text": NOT_STORED,
    # intake.revalidation, from payout's cycle topic
    "CycleOpened.period": (Stored("intake", "revalidation_requests", "period"),),
    # payout.revalidation, from intake's revalidation topic
    "RevalidationCompleted.period": (
        Stored("payout", "revalidation_parts", "period"),
        Stored("payout", "identity_holds", "period"),
    ),
    "RevalidationHold.beneficiary_id": (Stored("payout", "identity_holds", "beneficiary_id"),),
    "RevalidationHold.outcome": (Stored("payout", "identity_holds", "outcome"),),
    # reporting.projections, from payout's cycle topic (envelope use)
    "EnvelopeSet.period": (Stored("reporting", "envelope_budgets", "period"),),
    "EnvelopeSet.agency": (Stored("reporting", "envelope_budgets", "agency"),),
    "EnvelopeSet.scheme": (Stored("reporting", "envelope_budgets", "scheme"),),
    "EnvelopeSet.set_by": NOT_STORED,  # a person: the dashboard shows budgets, not who set them
    "CycleApproved.approval_id": (Stored("reporting", "envelope_approvals", "approval_id"),),
    "CycleApproved.period": (Stored("reporting", "envelope_approvals", "period"),),
    "CycleApproved.agency": (Stored("reporting", "envelope_approvals", "agency"),),
    "CycleApproved.approved_by": NOT_STORED,
    "CycleApproved.digest": NOT_STORED,
    "SchemeTotal.scheme": (Stored("reporting", "envelope_approvals", "scheme"),),
}

_FAKE_RUNTIME = types.SimpleNamespace(
    outbox=None,
    session_factory=None,
    inbox_table=None,
    bus=None,
    engine=None,
    settings=types.SimpleNamespace(consumer_batch_size=1),
)


def consumed_event_types() -> dict[str, set[str]]:
    """Per consuming service, the event types its consumers have handlers for: read from the
    consumers themselves, so a new handler is checked without anyone remembering to list it."""
    return {
        "payout": set(intake_view_consumer(_FAKE_RUNTIME).handlers)  # type: ignore[arg-type]
        | set(revalidation_consumer(_FAKE_RUNTIME).handlers),  # type: ignore[arg-type]
        "reporting": set(projection_runner(_FAKE_RUNTIME, 1).handlers),  # type: ignore[arg-type]
        "intake": set(account_verification_consumer(_FAKE_RUNTIME).handlers)  # type: ignore[arg-type]
        | set(cycle_consumer(_FAKE_RUNTIME).handlers),  # type: ignore[arg-type]
    }


# --- reading a contract's declared limits -----------------------------------------------------


@dataclass(frozen=True)
class FieldLimit:
    key: str  # "<declaring model>.<field>"
    kind: str  # "str", "literal", "int", "model", "other"
    max_length: int | None = None
    ge: int | None = None
    le: int | None = None
    model: type[BaseModel] | None = None


def _declaring(model: type[BaseModel], name: str) -> str:
    for cls in model.__mro__:
        if name in getattr(cls, "__annotations__", {}):
            return cls.__name__
    return model.__name__


def _constraints(annotation: object, metadata: list[object]) -> tuple[object, list[object]]:
    """The annotation without Optional / Annotated, and every constraint found on the way."""
    found = list(metadata)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1, f"one type besides None expected in {annotation}"
        return _constraints(inner[0], found)
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in annotation.__metadata__:  # type: ignore[attr-defined]
            found += list(getattr(extra, "metadata", [extra]))
        return _constraints(args[0], found)
    return annotation, found


def field_limits(model: type[BaseModel]) -> list[FieldLimit]:
    out = []
    for name, info in model.model_fields.items():
        base, found = _constraints(info.annotation, list(info.metadata))
        key = f"{_declaring(model, name)}.{name}"
        max_len = next((c.max_length for c in found if isinstance(c, annotated_types.MaxLen)), None)
        ge = next((c.ge for c in found if isinstance(c, annotated_types.Ge)), None)
        gt = next((c.gt for c in found if isinstance(c, annotated_types.Gt)), None)
        le = next((c.le for c in found if isinstance(c, annotated_types.Le)), None)
        if typing.get_origin(base) is list:
            # A list is bounded by its own max_length; the models it holds are walked too.
            out.append(FieldLimit(key, "list", max_length=max_len))
            item, _ = _constraints(typing.get_args(base)[0], [])
            if isinstance(item, type) and issubclass(item, BaseModel):
                out.append(FieldLimit(f"{key}[]", "model", model=item))
            else:
                assert item in (str, int), f"{key}: no limit rule for a list of {item!r}"
        elif typing.get_origin(base) is typing.Literal:
            out.append(
                FieldLimit(
                    key, "literal", max_length=max(len(str(v)) for v in typing.get_args(base))
                )
            )
        elif base is str:
            out.append(FieldLimit(key, "str", max_length=max_len))
        elif base is int:
            out.append(FieldLimit(key, "int", ge=ge if ge is not None else gt, le=le))
        elif isinstance(base, type) and issubclass(base, BaseModel):
            out.append(FieldLimit(key, "model", model=base))
        else:
            assert base in (bool, date, datetime), f"{key}: no limit rule for {base!r}"
            out.append(FieldLimit(key, "other"))
    return out


def all_limits(model: type[BaseModel]) -> list[FieldLimit]:
    """The model's fields and those of the models nested in it."""
    out = []
    for limit in field_limits(model):
        out.append(limit)
        if limit.model is not None:
            out += all_limits(limit.model)
    return out


# --- the contracts themselves -----------------------------------------------------------------


class TestContractsDeclareTheirLimits:
    def test_every_string_has_a_max_length_and_every_integer_a_range(self):
        unbounded = []
        for contract in CONTRACTS.values():
            for limit in all_limits(contract.model):
                if limit.kind == "str" and limit.max_length is None:
                    unbounded.append(f"{contract.type}: {limit.key} has no max_length")
                if limit.kind == "int" and (limit.ge is None or limit.le is None):
                    unbounded.append(f"{contract.type}: {limit.key} has no ge/le range")
                if limit.kind == "list" and limit.max_length is None:
                    unbounded.append(f"{contract.type}: {limit.key} has no max_length")
        assert not unbounded, unbounded

    def test_the_limit_reader_sees_a_widened_field(self):
        """The checks below rely on reading max_length off the contracts: prove it reads a change."""
        from typing import Annotated

        from pydantic import Field, create_model

        wider = create_model(
            "Wider",
            __base__=Contract,
            cash_reason=(Annotated[str, Field(max_length=501)] | None, None),
        )
        assert [limit.max_length for limit in field_limits(wider)] == [501]


# --- every consumed field is placed, and every place is wide enough ---------------------------


def consumed_string_fields() -> dict[str, int]:
    """ "<model>.<field>" -> max_length, for every string field of every event some consumer handles."""
    fields: dict[str, int] = {}
    for event_types in consumed_event_types().values():
        for event_type in event_types:
            for limit in all_limits(contract_for(event_type).model):
                if limit.kind in ("str", "literal"):
                    assert limit.max_length is not None
                    fields[limit.key] = limit.max_length
    return fields


class TestMappingIsComplete:
    def test_every_string_field_of_every_consumed_event_is_stored_somewhere_or_declared_not_stored(
        self,
    ):
        fields = consumed_string_fields()
        unplaced = sorted(set(fields) - set(STORAGE))
        assert not unplaced, (
            f"place these event fields in STORAGE (a consumer column, or NOT_STORED): {unplaced}"
        )
        stale = sorted(set(STORAGE) - set(fields))
        assert not stale, f"STORAGE names fields no consumed event has: {stale}"

    def test_consumers_are_found_from_their_handlers(self):
        consumed = consumed_event_types()
        assert "vn.benefits.intake.payment-method-changed.v2" in consumed["payout"]
        assert "vn.benefits.payout.payment-settled.v1" in consumed["reporting"]
        assert "vn.benefits.payout.account-flagged.v1" in consumed["intake"]


MIGRATIONS = {
    "intake": INTAKE_MIGRATIONS,
    "payout": PAYOUT_MIGRATIONS,
    "reporting": REPORTING_MIGRATIONS,
}


@pytest.fixture
async def column_widths(pg_database) -> dict[tuple[str, str, str], int | None]:
    """(service, table, column) -> character_maximum_length (None: unbounded) of every column of
    the three services' databases, migrated to head on PostgreSQL."""
    widths: dict[tuple[str, str, str], int | None] = {}
    for service, migrations in MIGRATIONS.items():
        url = await pg_database(f"limits_{service}")
        await upgrade_to_head_async(migrations, url)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT table_name, column_name, data_type, character_maximum_length "
                        "FROM information_schema.columns WHERE table_schema = 'public'"
                    )
                )
                for table, column, data_type, width in rows:
                    widths[(service, table, column)] = (
                        width
                        if data_type in ("character varying", "character")
                        else (None if data_type == "text" else -1)
                    )  # -1: not a text column at all
        finally:
            await engine.dispose()
    return widths


class TestConsumerColumnsHoldTheContract:
    async def test_every_stored_field_fits_its_columns_on_postgresql(self, column_widths):
        fields = consumed_string_fields()
        too_narrow = []
        for key, places in STORAGE.items():
            for place in places:
                width = column_widths.get((place.service, place.table, place.column), -2)
                assert width != -2, (
                    f"{key}: {place.service}.{place.table}.{place.column} does not exist"
                )
                assert width != -1, (
                    f"{key}: {place.service}.{place.table}.{place.column} is not a text column"
                )
                needed = fields[key] + place.prefix
                if width is not None and width < needed:
                    too_narrow.append(
                        f"{key} (max {needed}) > {place.service}.{place.table}.{place.column} ({width})"
                    )
        assert not too_narrow, too_narrow
