"""Targets: configuration rows, read and written through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from services.reporting.adapters.orm import targets
from services.reporting.adapters.repository.common import Db, changed
from services.reporting.domain.targets import Target


def _target(row: Any) -> Target:
    return Target(
        id=row.id,
        code=row.code,
        title_vi=row.title_vi,
        title_en=row.title_en,
        area_type=row.area_type,
        area_level=row.area_level,
        area_code=row.area_code,
        schemes=tuple(s for s in row.schemes.split(",") if s),
        target_bp=int(row.target_bp),
        deadline=row.deadline,
    )


def _values(target: Target) -> dict[str, Any]:
    return {
        "code": target.code,
        "title_vi": target.title_vi,
        "title_en": target.title_en,
        "area_type": target.area_type,
        "area_level": target.area_level,
        "area_code": target.area_code,
        "schemes": ",".join(target.schemes),
        "target_bp": target.target_bp,
        "deadline": target.deadline,
    }


class TargetRepository:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def list(self) -> list[Target]:
        rows = await self.db.execute(select(targets).order_by(targets.c.deadline, targets.c.code))
        return [_target(r) for r in rows]

    async def get(self, target_id: str) -> Target | None:
        row = (
            await self.db.execute(select(targets).where(targets.c.id == target_id))
        ).one_or_none()
        return _target(row) if row else None

    async def get_by_code(self, code: str) -> Target | None:
        row = (await self.db.execute(select(targets).where(targets.c.code == code))).one_or_none()
        return _target(row) if row else None

    async def add(self, target: Target, now: datetime) -> None:
        await self.db.execute(
            insert(targets).values(id=target.id, created_at=now, updated_at=now, **_values(target))
        )

    async def replace(self, target: Target, now: datetime) -> bool:
        result = await self.db.execute(
            update(targets)
            .where(targets.c.id == target.id)
            .values(updated_at=now, **_values(target))
        )
        return changed(result)

    async def remove(self, target_id: str) -> bool:
        result = await self.db.execute(delete(targets).where(targets.c.id == target_id))
        return changed(result)
