"""The audit trail: who changed what, when (masked values only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.intake.adapters import repository
from services.intake.api.common import (
    decode_cursor,
    dumps,
    encode_cursor,
    iso,
    json_response,
    scopes,
)
from services.intake.domain.errors import FieldError, Invalid
from shared.auth import Principal

router = APIRouter(tags=["audit"])


@router.get("/v1/audit", summary="Audit entries, oldest first, with a cursor")
async def audit(
    request: Request,
    principal: Principal = Depends(scopes("audit:read")),
    entity_type: str | None = None,
    entity_id: str | None = None,
    client_id: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response:
    after = None
    if cursor:
        [value] = decode_cursor(cursor, 1)
        if not (
            isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18
        ):
            raise Invalid([FieldError("/cursor", "is not a cursor this API gave")])
        after = int(value)
    async with request.app.state.runtime.engine.connect() as conn:
        rows = await repository.audit_entries(
            conn,
            limit=limit,
            after_id=after,
            entity_type=entity_type,
            entity_id=entity_id,
            client_id=client_id,
            action=action,
        )
    page = rows[:limit]
    return json_response(
        dumps(
            {
                "items": [
                    {
                        "id": r.id,
                        "at": iso(r.at),
                        "client_id": r.client_id,
                        "action": r.action,
                        "entity_type": r.entity_type,
                        "entity_id": r.entity_id,
                        "changes": r.changes,
                        "correlation_id": r.correlation_id,
                    }
                    for r in page
                ],
                "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
            }
        )
    )
