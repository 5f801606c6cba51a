"""The read models' writes, on PostgreSQL or SQLite, in the consumer's batch transaction.

Synchronous on purpose: it runs inside the session's commit (see consumers/projections.py), where
SQLAlchemy drives the async driver for us. Every write is a set-based statement per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, and_, select, update

from services.reporting.adapters.orm import (
    PROJECTIONS,
    claim_cube,
    claim_facts,
    claim_rollup,
    envelope_approvals,
    envelope_budgets,
    payment_cube,
    payment_facts,
    payment_people,
    payment_rollup,
    projection_state,
)
from services.reporting.domain.areas import reporting_area
from services.reporting.domain.envelopes import ApprovedTotal, EnvelopeSetEvent
from services.reporting.domain.model import (
    CLAIM_COUNTERS,
    PAYMENT_COUNTERS,
    ClaimCell,
    ClaimFact,
    Counters,
    InstallmentFact,
    PaymentCell,
    PersonKey,
)
from shared.bulk import chunks, insert_rows, one_of
from shared.clock import as_utc, utcnow
from shared.db import insert_for

Cell = TypeVar("Cell", PaymentCell, ClaimCell)


def area_columns(period: str, commune_code: str, list_date: date) -> dict[str, Any]:
    area = reporting_area(commune_code, list_date, period)
    return {
        "area_commune": area.code,
        "area_list": area.list_date,
        "area_district": area.district_code,
        "area_province": area.province_code,
        "area_type": area.area_type,
    }


def _fact(row: Any) -> InstallmentFact:
    return InstallmentFact(
        installment_id=row.installment_id,
        beneficiary_id=row.beneficiary_id,
        period=row.period,
        amount=int(row.amount),
        scheme=row.scheme,
        agency=row.agency,
        channel=row.channel,
        commune_code=row.commune_code,
        list_date=row.list_date,
        state=row.state,
        state_at=as_utc(row.state_at),
    )


class ProjectionRepository:
    """The `ProjectionStore` the projector writes through, on the batch's connection."""

    def __init__(self, conn: Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    # --- control ----------------------------------------------------------------------------

    def current_generation(self) -> int:
        query = select(projection_state.c.generation).where(projection_state.c.name == PROJECTIONS)
        if self.postgres:
            # Held to the commit: a rebuild's switch waits for this transaction, and a transaction after
            # the switch sees the new generation. Exclusive, because the same row records progress below.
            query = query.with_for_update()
        return int(self.conn.execute(query).scalar_one())

    def record_progress(self, events: int, newest_event_at: datetime | None) -> None:
        values: dict[str, Any] = {
            "events_applied": projection_state.c.events_applied + events,
            "last_applied_at": utcnow(),
        }
        if newest_event_at is not None:
            newest = as_utc(newest_event_at)
            current = as_utc(
                self.conn.execute(
                    select(projection_state.c.last_event_at).where(
                        projection_state.c.name == PROJECTIONS
                    )
                ).scalar_one()
            )
            if current is None or current < newest:
                values["last_event_at"] = newest
        self.conn.execute(
            update(projection_state).where(projection_state.c.name == PROJECTIONS).values(**values)
        )

    # --- installments and people ------------------------------------------------------------

    def load_installments(self, ids: Sequence[str]) -> dict[str, InstallmentFact]:
        out: dict[str, InstallmentFact] = {}
        for chunk in chunks(self.postgres, list(ids)):
            query = select(payment_facts).where(
                one_of(self.postgres, payment_facts.c.installment_id, chunk)
            )
            if self.postgres:
                query = query.order_by(payment_facts.c.installment_id).with_for_update()
            for row in self.conn.execute(query):
                out[row.installment_id] = _fact(row)
        return out

    def save_installments(self, facts: Sequence[InstallmentFact]) -> None:
        rows = [
            {
                "installment_id": f.installment_id,
                "beneficiary_id": f.beneficiary_id,
                "period": f.period,
                "amount": f.amount,
                "scheme": f.scheme,
                "agency": f.agency,
                "channel": f.channel,
                "commune_code": f.commune_code,
                "list_date": f.list_date,
                "state": f.state,
                "state_at": as_utc(f.state_at),
            }
            for f in sorted(facts, key=lambda f: f.installment_id)
        ]
        stmt = insert_for(self.postgres, payment_facts)
        stmt = stmt.on_conflict_do_update(
            index_elements=[payment_facts.c.installment_id],
            set_={
                c: stmt.excluded[c]
                for c in (
                    "amount",
                    "agency",
                    "channel",
                    "commune_code",
                    "list_date",
                    "state",
                    "state_at",
                )
            },
        )
        self._many(stmt, rows)

    def _people_filter(self, table: Table, keys: Sequence[PersonKey]) -> ColumnElement[bool]:
        return and_(
            one_of(self.postgres, table.c.period, sorted({k.period for k in keys})),
            one_of(self.postgres, table.c.beneficiary_id, sorted({k.beneficiary_id for k in keys})),
        )

    def lock_people(self, keys: Sequence[PersonKey]) -> dict[PersonKey, PaymentCell | None]:
        keys = sorted(keys)
        self._many(
            insert_for(self.postgres, payment_people).on_conflict_do_nothing(),
            [
                {"period": k.period, "beneficiary_id": k.beneficiary_id, "scheme": k.scheme}
                for k in keys
            ],
        )
        wanted = set(keys)
        out: dict[PersonKey, PaymentCell | None] = {}
        for chunk in chunks(self.postgres, keys):
            query = select(payment_people).where(self._people_filter(payment_people, chunk))
            if self.postgres:
                query = query.order_by(
                    payment_people.c.period,
                    payment_people.c.beneficiary_id,
                    payment_people.c.scheme,
                ).with_for_update()
            for row in self.conn.execute(query):
                key = PersonKey(row.period, row.beneficiary_id, row.scheme)
                if key not in wanted:
                    continue
                out[key] = (
                    PaymentCell(
                        row.period,
                        row.commune_code,
                        row.list_date,
                        row.scheme,
                        row.agency,
                        row.channel,
                    )
                    if row.channel is not None
                    else None
                )
        return out

    def installments_of(self, keys: Sequence[PersonKey]) -> dict[PersonKey, list[InstallmentFact]]:
        wanted = set(keys)
        out: dict[PersonKey, list[InstallmentFact]] = {}
        for chunk in chunks(self.postgres, sorted(keys)):
            for row in self.conn.execute(
                select(payment_facts).where(self._people_filter(payment_facts, chunk))
            ):
                fact = _fact(row)
                if fact.person in wanted:
                    out.setdefault(fact.person, []).append(fact)
        return out

    def save_people(self, cells: dict[PersonKey, PaymentCell | None]) -> None:
        rows = [
            {
                "period": key.period,
                "beneficiary_id": key.beneficiary_id,
                "scheme": key.scheme,
                "commune_code": cell.commune_code if cell else None,
                "list_date": cell.list_date if cell else None,
                "agency": cell.agency if cell else None,
                "channel": cell.channel if cell else None,
            }
            for key, cell in sorted(cells.items(), key=lambda kv: kv[0])
        ]
        stmt = insert_for(self.postgres, payment_people)
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                payment_people.c.period,
                payment_people.c.beneficiary_id,
                payment_people.c.scheme,
            ],
            set_={c: stmt.excluded[c] for c in ("commune_code", "list_date", "agency", "channel")},
        )
        self._many(stmt, rows)

    # --- claims -----------------------------------------------------------------------------

    def load_claims(self, ids: Sequence[str]) -> dict[str, ClaimFact]:
        out: dict[str, ClaimFact] = {}
        for chunk in chunks(self.postgres, list(ids)):
            query = select(claim_facts).where(one_of(self.postgres, claim_facts.c.claim_id, chunk))
            if self.postgres:
                query = query.order_by(claim_facts.c.claim_id).with_for_update()
            for row in self.conn.execute(query):
                received = decided = None
                if row.received_period is not None:
                    received = ClaimCell(
                        row.received_period,
                        row.received_commune,
                        row.received_list,
                        row.received_scheme,
                        row.received_agency,
                    )
                if row.decided_period is not None:
                    decided = ClaimCell(
                        row.decided_period,
                        row.decided_commune,
                        row.decided_list,
                        row.decided_scheme,
                        row.decided_agency,
                    )
                out[row.claim_id] = ClaimFact(
                    row.claim_id,
                    received,
                    as_utc(row.received_at),
                    decided,
                    row.outcome,
                    as_utc(row.decided_at),
                )
        return out

    def save_claims(self, facts: Sequence[ClaimFact]) -> None:
        rows = []
        for f in sorted(facts, key=lambda f: f.claim_id):
            r, d = f.received, f.decided
            rows.append(
                {
                    "claim_id": f.claim_id,
                    "received_period": r.period if r else None,
                    "received_commune": r.commune_code if r else None,
                    "received_list": r.list_date if r else None,
                    "received_scheme": r.scheme if r else None,
                    "received_agency": r.agency if r else None,
                    "received_at": as_utc(f.received_at),
                    "decided_period": d.period if d else None,
                    "decided_commune": d.commune_code if d else None,
                    "decided_list": d.list_date if d else None,
                    "decided_scheme": d.scheme if d else None,
                    "decided_agency": d.agency if d else None,
                    "outcome": f.outcome,
                    "decided_at": as_utc(f.decided_at),
                }
            )
        stmt = insert_for(self.postgres, claim_facts)
        stmt = stmt.on_conflict_do_update(
            index_elements=[claim_facts.c.claim_id],
            set_={
                c.name: stmt.excluded[c.name] for c in claim_facts.columns if c.name != "claim_id"
            },
        )
        self._many(stmt, rows)

    # --- funds envelopes --------------------------------------------------------------------

    def save_envelopes(self, events: Sequence[EnvelopeSetEvent]) -> None:
        """Each key's newest envelope: one set earlier than the stored one changes nothing."""
        rows = [
            {
                "period": e.key.period,
                "agency": e.key.agency,
                "scheme": e.key.scheme,
                "amount": e.amount,
                "set_at": as_utc(e.at),
            }
            for e in sorted(events, key=lambda e: e.key)
        ]
        stmt = insert_for(self.postgres, envelope_budgets)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(envelope_budgets.primary_key.columns),
            set_={"amount": stmt.excluded.amount, "set_at": stmt.excluded.set_at},
            where=stmt.excluded.set_at >= envelope_budgets.c.set_at,
        )
        self._many(stmt, rows)

    def save_approvals(self, totals: Sequence[ApprovedTotal]) -> None:
        """An approval's lines, once: the same approval again (a re-published event) is kept as it was."""
        rows = [
            {
                "approval_id": t.approval_id,
                "scheme": t.key.scheme,
                "period": t.key.period,
                "agency": t.key.agency,
                "count": t.count,
                "amount": t.amount,
                "envelope": t.envelope,
                "approved_at": as_utc(t.at),
            }
            for t in sorted(totals, key=lambda t: (t.approval_id, t.key.scheme))
        ]
        self._many(insert_for(self.postgres, envelope_approvals).on_conflict_do_nothing(), rows)

    # --- cubes ------------------------------------------------------------------------------

    def add_to_payment_cube(self, deltas: dict[PaymentCell, Counters]) -> None:
        rows = _cube_rows(deltas, PAYMENT_COUNTERS)
        self._add(payment_cube, rows, PAYMENT_COUNTERS)
        rollup = _roll_up(rows, (*ROLLUP_KEY, "channel"), PAYMENT_COUNTERS)
        self._add(payment_rollup, rollup, PAYMENT_COUNTERS)

    def add_to_claim_cube(self, deltas: dict[ClaimCell, Counters]) -> None:
        rows = _cube_rows(deltas, CLAIM_COUNTERS)
        self._add(claim_cube, rows, CLAIM_COUNTERS)
        self._add(claim_rollup, _roll_up(rows, ROLLUP_KEY, CLAIM_COUNTERS), CLAIM_COUNTERS)

    def _add(self, table: Table, rows: list[dict[str, Any]], counters: Sequence[str]) -> None:
        stmt = insert_for(self.postgres, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={name: table.c[name] + stmt.excluded[name] for name in counters},
        )
        self._many(stmt, rows)

    def _many(self, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """One statement for many rows: their columns as arrays on PostgreSQL (shared/bulk.py)."""
        if rows:
            self.conn.execute(*insert_rows(self.postgres, stmt, rows))


def _cube_rows(deltas: Mapping[Cell, Counters], counters: Sequence[str]) -> list[dict[str, Any]]:
    """A cube row per cell (its reporting area resolved), in key order: concurrent batches take
    the rows' locks in the same order."""
    rows = []
    for cell, changes in sorted(deltas.items(), key=lambda kv: _cell_order(kv[0])):
        row: dict[str, Any] = {
            "period": cell.period,
            "commune_code": cell.commune_code,
            "list_date": cell.list_date,
            "scheme": cell.scheme,
            "agency": cell.agency,
        }
        if isinstance(cell, PaymentCell):
            row["channel"] = cell.channel
        row.update(area_columns(cell.period, cell.commune_code, cell.list_date))
        row.update({name: changes.get(name, 0) for name in counters})
        rows.append(row)
    return rows


ROLLUP_KEY = ("period", "area_province", "area_district", "area_type", "scheme", "agency")


def _roll_up(
    rows: list[dict[str, Any]], key: Sequence[str], counters: Sequence[str]
) -> list[dict[str, Any]]:
    merged: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        k = tuple(row[name] for name in key)
        target = merged.setdefault(
            k, {**{name: row[name] for name in key}, **dict.fromkeys(counters, 0)}
        )
        for c in counters:
            target[c] += row[c]
    return [r for _, r in sorted(merged.items()) if any(r[c] for c in counters)]


def _cell_order(cell: PaymentCell | ClaimCell) -> tuple:
    return tuple(
        str(v)
        for v in (
            cell.period,
            cell.commune_code,
            cell.list_date,
            cell.scheme,
            cell.agency,
            getattr(cell, "channel", ""),
        )
    )
