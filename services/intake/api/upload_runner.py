"""The boundary of a bulk upload: one unit of work for its head, one per chunk of rows, one for
its totals. If a chunk fails (for instance a concurrent upload registered the same person), it is
retried, then applied one row at a time: a row that still fails is refused alone."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.service_layer import uploads as service
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.clock import utcnow
from shared.outbox import Outbox
from shared.periods import vietnam_date
from shared.uow import unit_of_work

log = logging.getLogger(__name__)


async def run_upload(
    engine: AsyncEngine,
    outbox: Outbox,
    actor: str,
    upload: service.Upload,
    acting_agency: str | None,
) -> service.UploadReport:
    now = utcnow()
    upload_id = str(uuid.uuid4())
    results, entries = service.check_rows(upload, vietnam_date(now), acting_agency)
    async with unit_of_work(engine, outbox, actor, now=now, kind=IntakeUnitOfWork) as uow:
        await service.open_upload(uow, upload_id, upload, results)

    async def apply(chunk: list[Any]) -> list[service.RowResult]:
        async with unit_of_work(engine, outbox, actor, kind=IntakeUnitOfWork) as uow:
            return await service.apply_chunk(uow, upload_id, upload, chunk, acting_agency)

    late: list[
        service.RowResult
    ] = []  # rows refused after their chunk failed: saved with the totals
    for start in range(0, len(entries), service.CHUNK):
        results += await _apply_with_fallback(
            apply, entries[start : start + service.CHUNK], upload_id, late
        )
    results += late
    report = service.UploadReport(
        upload_id,
        upload.kind,
        upload.format,
        len(upload.rows),
        sorted(results, key=lambda r: r.row),
    )
    async with unit_of_work(engine, outbox, actor, kind=IntakeUnitOfWork) as uow:
        await service.close_upload(uow, report, late)
    log.info(
        "upload applied",
        extra={
            "fields": {
                "upload_id": upload_id,
                "kind": upload.kind,
                "rows": len(upload.rows),
                "accepted": report.count(service.REGISTERED, service.UPDATED),
                "unchanged": report.count(service.UNCHANGED),
                "rejected": report.count(service.REJECTED),
            }
        },
    )
    return report


ApplyChunk = Callable[[list[Any]], Awaitable[list[service.RowResult]]]


async def _apply_with_fallback(
    apply: ApplyChunk, chunk: list[Any], upload_id: str, late: list[service.RowResult]
) -> list[service.RowResult]:
    for _attempt in range(2):
        try:
            return await apply(chunk)
        except (IntegrityError, DBAPIError) as exc:
            log.warning(
                "upload chunk failed, retrying",
                extra={
                    "fields": {
                        "upload_id": upload_id,
                        "rows": len(chunk),
                        "error": type(exc).__name__,
                    }
                },
            )
    # One row per transaction: a row that still fails is refused alone, the others go in.
    results: list[service.RowResult] = []
    for entry in chunk:
        try:
            results += await apply([entry])
        except (IntegrityError, DBAPIError):
            late.append(service.conflicted(entry))
    return results
