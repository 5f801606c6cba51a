"""The approval digest of a large part in flat memory, on SQLite and on PostgreSQL: the repository
streams what awaits in chunks from a server-side cursor, in the digest's order whatever order
the rows were written in, and the digest folds them one chunk at a time; a part of 50,000 items
never sits in memory at once. Approving it releases the agency's batches in set-based statements,
never a list of their ids."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.payout.adapters.orm import batches, cycles, installments, payment_attempts
from services.payout.adapters.repository import approvals as repository
from services.payout.domain import model
from services.payout.domain.approval import Item, awaiting
from services.payout.service_layer.approvals import awaiting_of
from shared.db import is_postgres, make_engine
from shared.uow import UnitOfWork

PERIOD, AGENCY = "2031-03", "DOLISA"
NOW = datetime(2031, 3, 1, 2, tzinfo=UTC)
SCHEMES = ("SOCIAL_PROTECTION", "MERITORIOUS")
# (channel, counterparty) of item k: k modulo their number.
ROUTES = (
    ("OWN_ACCOUNT", "970436"),
    ("OWN_ACCOUNT", "970418"),
    ("AUTHORISED_ACCOUNT", "970405"),
    ("CASH_POST_OFFICE", "VNPOST"),
)
BATCH = 2_000
WRITE_CHUNK = 5_000
TABLES = (cycles, installments, payment_attempts, batches)


def item(k: int) -> Item:
    """The k-th item (installment id k) of the part that `build_part` writes."""
    channel, counterparty = ROUTES[k % len(ROUTES)]
    method = None if channel == "CASH_POST_OFFICE" else f"M-{k}"
    return Item(k, 500_000 + (k * 7_919) % 1_500_000, SCHEMES[k % 2], channel, counterparty, method)


def _scrambled(n: int) -> list[int]:
    """1..n in an order unrelated to the installment ids (a multiplicative permutation)."""
    step = next(s for s in (104_729, 7_919, 613, 7) if n % s)
    return [(k * step) % n + 1 for k in range(n)]


async def build_part(engine: AsyncEngine, n: int, cycle_id: int = 1) -> int:
    """Write a prepared cycle whose agency part holds items 1..n, one attempt each, in PREPARED
    batches of `BATCH`. The attempts are written in a scrambled order, so their ids (and the
    rows' physical order) say nothing of the installment ids. Also an attempt cancelled, one in a
    batch already released and one of another agency: none of them awaits. Returns the cycle id."""
    async with engine.begin() as db:
        await db.run_sync(lambda sync: cycles.metadata.create_all(sync, tables=list(TABLES)))
        await db.execute(
            cycles.insert().values(
                id=cycle_id,
                period=PERIOD,
                state="OPEN",
                started_at=NOW,
                started_by="minh",
                creation_finished_at=NOW,
                prepared_by="minh",
            )
        )
        count = -(-n // BATCH)
        await db.execute(
            batches.insert(),
            [_batch(f"B-{b}", cycle_id, AGENCY, model.BATCH_PREPARED) for b in range(count)]
            + [
                _batch("B-released", cycle_id, AGENCY, model.BATCH_READY),
                _batch("B-other", cycle_id, "BHXH", model.BATCH_PREPARED),
            ],
        )
        extras = {n + 1: "B-0", n + 2: "B-released", n + 3: "B-other"}
        for start in range(1, n + len(extras) + 1, WRITE_CHUNK):
            ids = range(start, min(start + WRITE_CHUNK, n + len(extras) + 1))
            await db.execute(installments.insert(), [_installment(k, cycle_id) for k in ids])
        order = [*_scrambled(n), *extras]
        for start in range(0, len(order), WRITE_CHUNK):
            await db.execute(
                payment_attempts.insert(),
                [
                    _attempt(
                        attempt_id,
                        k,
                        cycle_id,
                        extras.get(k, f"B-{(k - 1) // BATCH}"),
                        model.CANCELLED if k == n + 1 else "CREATED",
                    )
                    for attempt_id, k in enumerate(order[start : start + WRITE_CHUNK], start + 1)
                ],
            )
    return cycle_id


def _batch(batch_id: str, cycle_id: int, agency: str, state: str) -> dict[str, object]:
    return {
        "batch_id": batch_id,
        "cycle_id": cycle_id,
        "period": PERIOD,
        "agency": agency,
        "counterparty": "970436",
        "control_count": 0,
        "control_sum": 0,
        "execution_date": date(2031, 3, 5),
        "state": state,
        "prepared_by": "minh",
        "next_attempt_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _installment(k: int, cycle_id: int) -> dict[str, object]:
    i = item(k)
    return {
        "id": k,
        "cycle_id": cycle_id,
        "entitlement_id": f"E-{k}",
        "beneficiary_id": f"B-{k}",
        "period": PERIOD,
        "amount": i.amount,
        "scheme": i.scheme,
        "agency": AGENCY,
        "commune_code": "09154",
        "commune_list_date": date(2023, 5, 7),
        "channel": i.channel,
        "counterparty": i.counterparty,
        "method_id": i.method_id,
        "state": model.SCHEDULED,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _attempt(
    attempt_id: int, k: int, cycle_id: int, batch_id: str, state: str
) -> dict[str, object]:
    i = item(k)
    return {
        "id": attempt_id,
        "installment_id": k,
        "attempt_no": 1,
        "end_to_end_id": f"PAY-{k}-1",
        "cycle_id": cycle_id,
        "channel": i.channel,
        "counterparty": i.counterparty,
        "amount": i.amount,
        "account_name": "NGUYEN VAN A",
        "remittance_info": f"{PERIOD} {i.scheme}",
        "batch_id": batch_id,
        "state": state,
        "created_at": NOW,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request, pg_database, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = (
        await pg_database("digest")
        if request.param == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path}/digest.db"
    )
    made = make_engine(url)
    try:
        yield made
    finally:
        await made.dispose()


class TestStreamedDigest:
    async def test_the_repository_hands_over_an_iterator_of_bounded_chunks(self, engine):
        cycle_id = await build_part(engine, 25)
        async with engine.connect() as db:
            chunks = repository.awaiting_items(db, cycle_id, AGENCY, chunk=10)
            assert not isinstance(chunks, list) and hasattr(chunks, "__aiter__")
            sizes = [len(part) async for part in chunks]
        assert sizes == [10, 10, 5]

    async def test_the_digest_follows_installment_ids_whatever_order_rows_were_written(
        self, engine
    ):
        n = 3_001
        cycle_id = await build_part(engine, n)
        async with engine.connect() as db:
            streamed = [
                i async for part in repository.awaiting_items(db, cycle_id, AGENCY) for i in part
            ]
            shown = await awaiting_of(db, cycle_id, PERIOD, AGENCY)
        assert streamed == [item(k) for k in range(1, n + 1)]
        assert shown == awaiting(PERIOD, AGENCY, (item(k) for k in range(1, n + 1)))
        assert (shown.count, shown.amount) == (n, sum(item(k).amount for k in range(1, n + 1)))

    async def test_the_digest_of_50000_items_takes_little_memory(self, engine):
        cycle_id = await build_part(engine, 50_000)
        async with engine.connect() as db:
            await awaiting_of(db, cycle_id, PERIOD, AGENCY)  # the connection and its caches
            tracemalloc.start()
            try:
                shown = await awaiting_of(db, cycle_id, PERIOD, AGENCY)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert shown.count == 50_000
        # A list of every item and one JSON of them all took 29 MB (SQLite), 35 MB (PostgreSQL).
        assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB"


class TestSetBasedRelease:
    async def test_the_agencys_prepared_batches_and_no_other_are_released(self, engine):
        cycle_id = await build_part(engine, 2 * BATCH + 1)  # B-0, B-1, B-2
        today = date(2031, 3, 6)  # after the batches' execution date
        async with engine.begin() as db:
            uow = UnitOfWork(db, None, "lan", NOW, is_postgres(engine))  # type: ignore[arg-type]
            assert await repository.awaiting_preparers(uow, cycle_id, AGENCY) == {"minh": 3}
            assert await repository.release_batches(uow, cycle_id, AGENCY, 7, today) == 3
            rows = await db.execute(
                select(
                    batches.c.batch_id,
                    batches.c.state,
                    batches.c.approval_id,
                    batches.c.execution_date,
                ).order_by(batches.c.batch_id)
            )
            states = {r[0]: tuple(r[1:]) for r in rows.all()}
            assert await repository.awaiting_preparers(uow, cycle_id, AGENCY) == {}
        assert states == {
            **{f"B-{b}": (model.BATCH_READY, 7, today) for b in range(3)},
            "B-other": (model.BATCH_PREPARED, None, date(2031, 3, 5)),
            "B-released": (model.BATCH_READY, None, date(2031, 3, 5)),
        }
