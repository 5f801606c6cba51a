"""The reporting API, `/v1/...`: key figures, breakdowns, time series, targets and exports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reporting.adapters import exports
from services.reporting.adapters.repository import ControlRepository, TargetRepository
from services.reporting.adapters.repository.reads import Filters
from services.reporting.api.schemas import (
    AreaLevel,
    AreasOut,
    AreaType,
    BreakdownOut,
    Dimension,
    EnvelopesOut,
    FreshnessOut,
    KpisOut,
    PeriodsOut,
    ProgressListOut,
    ProgressOut,
    SplitDimension,
    TargetIn,
    TargetOut,
    TimeseriesOut,
)
from services.reporting.domain import labels
from services.reporting.domain.areas import LIST_2025_07, list_in_force, units_2025_07
from services.reporting.domain.disclosure import THRESHOLD, is_small
from services.reporting.domain.figures import FIGURE_NAMES, Figures, percent, points
from services.reporting.domain.targets import Progress, Target
from services.reporting.service_layer.queries import (
    Breakdown,
    ReportQueries,
    suppress_breakdown,
    suppress_series,
)
from shared.admin_units import LIST_2023, units
from shared.auth import Principal, optional_principal, require_scopes
from shared.clock import utcnow
from shared.events.contracts import PERIOD_PATTERN, Agency, PaymentMethodKind, Scheme
from shared.periods import last_complete_period
from shared.uow import UnitOfWork, unit_of_work
from shared.web import ProblemError, problem_responses

VALIDATION = "https://benefits.example.vn/problems/validation"


READ_SCOPE = "reports:read"
DETAIL_SCOPE = "reports:detail"  # every cell shown, however few people it describes


@dataclass(frozen=True, slots=True)
class Reader:
    principal: Principal | None

    @property
    def detail(self) -> bool:
        return self.principal is not None and self.principal.can(DETAIL_SCOPE)


def read_access(request: Request) -> Reader:
    """Outside development every read needs a token with `reports:read`; in development reads are
    open unless `REPORTING_REQUIRE_AUTH=true`. Either way, small cells are hidden from a reader
    without `reports:detail` (an anonymous one included)."""
    if request.app.state.settings.reads_need_token:
        return Reader(require_scopes(READ_SCOPE)(request))
    return Reader(optional_principal(request))


ReadAccess = Annotated[Reader, Depends(read_access)]


async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A read's connection, opened by the request: nothing is written, nothing committed."""
    async with request.app.state.runtime.engine.connect() as connection:
        yield connection


ReadConnection = Annotated[AsyncConnection, Depends(read_connection)]


def writing(request: Request, principal: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
    """A write's transaction, opened by its endpoint: committed when the block ends, rolled back
    if it raises (a conflict or a missing target included)."""
    runtime = request.app.state.runtime
    return unit_of_work(runtime.engine, runtime.outbox, principal.client_id)


Period = Annotated[str | None, Query(pattern=PERIOD_PATTERN)]


def _invalid(pointer: str, detail: str) -> ProblemError:
    return ProblemError(
        422,
        "Unprocessable Content",
        "the request has invalid fields",
        type_=VALIDATION,
        errors=[{"pointer": pointer, "location": "query", "detail": detail}],
    )


def query_filters(
    period: Period = None,
    period_from: Period = None,
    period_to: Period = None,
    area_level: AreaLevel | None = None,
    area_code: Annotated[str | None, Query(max_length=16)] = None,
    area_list_date: date | None = None,
    area_type: AreaType | None = None,
    scheme: Annotated[list[Scheme], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    agency: Annotated[list[Agency], Query()] = [],  # noqa: B006
    channel: Annotated[list[PaymentMethodKind], Query()] = [],  # noqa: B006
) -> Filters:
    if period and (period_from or period_to):
        raise _invalid("/period", "give either period or period_from/period_to")
    first, last = (period, period) if period else (period_from, period_to)
    if first and last and first > last:
        raise _invalid("/period_from", "period_from is after period_to")
    if area_code and not area_level:
        raise _invalid("/area_level", "area_code needs area_level")
    return Filters(
        first,
        last,
        area_level,
        area_code,
        area_list_date,
        area_type,
        tuple(sorted(set(scheme))),
        tuple(sorted(set(agency))),
        tuple(sorted(set(channel))),
    )


QueryFilters = Annotated[Filters, Depends(query_filters)]


HIDDEN_FIGURES = dict.fromkeys((*FIGURE_NAMES, "decisions", "cashless_share_percent"))


def figures_out(figures: Figures, suppressed: bool = False) -> dict:
    if suppressed:
        return {**HIDDEN_FIGURES, "suppressed": True}
    return {**figures.as_dict(), "suppressed": False}


def for_reader(breakdown: Breakdown, reader: Reader) -> Breakdown:
    return breakdown if reader.detail else suppress_breakdown(breakdown)


def suppressed_below(reader: Reader) -> int | None:
    return None if reader.detail else THRESHOLD


def breakdown_out(breakdown: Breakdown) -> dict:
    return {
        "dimension": breakdown.dimension,
        "filters": breakdown.filters.as_dict(),
        "suppressed_below": THRESHOLD if breakdown.suppression else None,
        "rows": [
            {
                "key": {k: str(v) for k, v in r.key.items()},
                "code": r.code,
                "name_vi": r.name_vi,
                "name_en": r.name_en,
                "area_type": r.area_type,
                **figures_out(r.figures, r.suppressed),
            }
            for r in breakdown.rows
        ],
        "total": figures_out(breakdown.total, breakdown.total_suppressed),
    }


def target_out(target: Target) -> dict:
    return {
        "id": target.id,
        "code": target.code,
        "title_vi": target.title_vi,
        "title_en": target.title_en,
        "area_type": target.area_type,
        "area_level": target.area_level,
        "area_code": target.area_code,
        "schemes": list(target.schemes),
        "target_percent": target.target_bp / 100,
        "deadline": target.deadline,
    }


def progress_out(progress: Progress, as_of: str) -> dict:
    return {
        "target": target_out(progress.target),
        "status": progress.status,
        "as_of": as_of,
        "period": progress.period,
        "people_paid": progress.people_paid,
        "people_cashless": progress.people_cashless,
        "share_percent": percent(progress.share),
        "gap_pp": points(progress.gap_pp),
        "trend_pp_per_month": points(progress.trend_pp_per_month),
        "projected_date": progress.projected_date,
        "deadline_passed": progress.deadline_passed,
        "window": [
            {
                "period": w.period,
                "people_paid": w.people_paid,
                "people_cashless": w.people_cashless,
                "share_percent": percent(w.share),
            }
            for w in progress.window
        ],
    }


def _target_from(body: TargetIn, target_id: str) -> Target:
    if body.area_level != "province" and not body.area_code:
        raise _invalid("/area_code", "a district or commune target needs area_code")
    return Target(
        id=target_id,
        code=body.code,
        title_vi=body.title_vi,
        title_en=body.title_en,
        area_type=body.area_type,
        area_level=body.area_level,
        area_code=body.area_code,
        schemes=tuple(dict.fromkeys(body.schemes)),
        target_bp=int(body.target_percent * 100),
        deadline=body.deadline,
    )


def _not_found(what: str) -> ProblemError:
    return ProblemError(404, "Not Found", f"no such {what}")


# Reads answer 401/403 when a token is needed (outside development, or `REPORTING_REQUIRE_AUTH`); writes always
# need one. A target is a
# few fields: a body past 64 KiB is refused (413) before it is read.
router = APIRouter(
    prefix="/v1",
    tags=["reporting"],
    dependencies=[Depends(read_access)],
    responses=problem_responses(401, 403),
    max_body_size=64 * 1024,
)
writer = require_scopes("reports:write")


@router.get("/kpis", response_model=KpisOut, summary="Key figures for the filters")
async def kpis(db: ReadConnection, filters: QueryFilters, reader: ReadAccess) -> dict:
    figures = await ReportQueries(db).kpis(filters)
    return {
        "filters": filters.as_dict(),
        "suppressed_below": suppressed_below(reader),
        "figures": figures_out(figures, not reader.detail and is_small(figures)),
    }


@router.get(
    "/breakdowns/{dimension}",
    response_model=BreakdownOut,
    summary="Figures per area, scheme, agency, channel or period; rows add up to the total",
)
async def breakdown(
    db: ReadConnection,
    dimension: Dimension,
    filters: QueryFilters,
    reader: ReadAccess,
    sort: Literal["code", "share", "-share", "people", "amount"] = "code",
) -> dict:
    return breakdown_out(
        for_reader(await ReportQueries(db).breakdown(dimension, filters, sort), reader)
    )


@router.get(
    "/timeseries", response_model=TimeseriesOut, summary="Figures per period, optionally split"
)
async def timeseries(
    db: ReadConnection,
    filters: QueryFilters,
    reader: ReadAccess,
    split: SplitDimension | None = None,
) -> dict:
    result = await ReportQueries(db).timeseries(split, filters)
    if not reader.detail:
        result = suppress_series(result)
    return {
        "split": result["split"],
        "filters": filters.as_dict(),
        "periods": result["periods"],
        "suppressed_below": suppressed_below(reader),
        "series": [
            {
                "key": {k: str(v) for k, v in s["key"].items()},
                "code": s["code"],
                "name_vi": s["name_vi"],
                "name_en": s["name_en"],
                "points": [
                    {"period": p, **figures_out(f, p in s.get("hidden", ()))}
                    for p, f in s["points"]
                ],
            }
            for s in result["series"]
        ],
    }


@router.get("/periods", response_model=PeriodsOut, summary="Periods that have figures")
async def list_periods(db: ReadConnection) -> dict:
    queries = ReportQueries(db)
    return {
        "periods": await queries.periods(),
        "default_period": await queries.default_period(),
        "latest_complete": last_complete_period(),
    }


@router.get(
    "/envelopes",
    response_model=EnvelopesOut,
    summary="Funds envelopes per agency and scheme: envelope, approved, paid, remaining",
)
async def envelopes(db: ReadConnection, reader: ReadAccess, period: Period = None) -> dict:
    queries = ReportQueries(db)
    periods = await queries.envelope_periods()
    shown = period or (periods[-1] if periods else None)
    lines = await queries.envelope_use(shown) if shown else []
    rows = []
    for line in lines:
        agency_vi, agency_en = labels.pair(labels.AGENCIES, line.key.agency)
        scheme_vi, scheme_en = labels.pair(labels.SCHEMES, line.key.scheme)
        rows.append(
            line.as_dict(hide_small=not reader.detail)
            | {
                "agency_name_vi": agency_vi,
                "agency_name_en": agency_en,
                "scheme_name_vi": scheme_vi,
                "scheme_name_en": scheme_en,
            }
        )
    return {
        "period": shown,
        "periods": periods,
        "suppressed_below": suppressed_below(reader),
        "rows": rows,
    }


@router.get("/areas", response_model=AreasOut, summary="Districts or communes of a unit list")
async def areas(
    level: Literal["district", "commune"] = "district", list_date: date = LIST_2023
) -> dict:
    effective = list_in_force(list_date)
    if effective == LIST_2025_07:
        if level == "district":
            return {"level": level, "list_date": effective, "areas": []}
        found = [
            {"code": a.code, "name": a.name, "list_date": a.list_date, "area_type": a.area_type}
            for a in sorted(units_2025_07().values(), key=lambda a: a.code)
        ]
        return {"level": level, "list_date": effective, "areas": found}
    listed = units(effective)
    if level == "district":
        seen: dict[str, str] = {}
        for unit in listed:
            seen.setdefault(unit.district_code, unit.district_name)
        return {
            "level": level,
            "list_date": effective,
            "areas": [{"code": c, "name": n, "list_date": effective} for c, n in seen.items()],
        }
    return {
        "level": level,
        "list_date": effective,
        "areas": [
            {
                "code": u.code,
                "name": u.name,
                "list_date": u.list_date,
                "district_code": u.district_code,
                "district_name": u.district_name,
                "area_type": u.area_type,
            }
            for u in listed
        ],
    }


@router.get("/freshness", response_model=FreshnessOut, summary="How current the figures are")
async def freshness(db: ReadConnection) -> dict:
    state = await ControlRepository(db).read()
    lag = None
    if state.last_event_at and state.last_applied_at:
        lag = round(max(0.0, (state.last_applied_at - state.last_event_at).total_seconds()), 3)
    return {
        "generation": state.generation,
        "state": state.state,
        "events_applied": state.events_applied,
        "last_event_at": state.last_event_at,
        "last_applied_at": state.last_applied_at,
        "lag_seconds": lag,
        "rebuilt_at": state.rebuilt_at,
    }


@router.get(
    "/exports/{dimension}.{fmt}",
    summary="A breakdown as CSV or XLSX",
    responses={200: {"content": {"text/csv": {}, exports.XLSX_TYPE: {}}}},
)
async def export(
    db: ReadConnection,
    dimension: Dimension,
    fmt: Literal["csv", "xlsx"],
    filters: QueryFilters,
    reader: ReadAccess,
    lang: Literal["vi", "en"] = "vi",
    sort: Literal["code", "share", "-share", "people", "amount"] = "code",
) -> Response:
    result = for_reader(await ReportQueries(db).breakdown(dimension, filters, sort), reader)
    stamp = utcnow().strftime("%Y%m%d")
    filename = (
        f"bao-cao-{dimension}-{stamp}.{fmt}"
        if lang == "vi"
        else f"report-{dimension}-{stamp}.{fmt}"
    )
    if fmt == "csv":
        body, media = exports.to_csv(result, lang), "text/csv; charset=utf-8"
    else:
        body, media = exports.to_xlsx(result, lang), exports.XLSX_TYPE
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- targets ----------------------------------------------------------------------------------


@router.get("/targets", response_model=list[TargetOut], summary="Targets")
async def list_targets(db: ReadConnection) -> list[dict]:
    return [target_out(t) for t in await ReportQueries(db).targets.list()]


@router.get(
    "/targets/progress", response_model=ProgressListOut, summary="Progress against every target"
)
async def all_progress(db: ReadConnection, as_of: Period = None) -> dict:
    queries = ReportQueries(db)
    as_of = as_of or last_complete_period()
    progress = await queries.progress_of(await queries.targets.list(), as_of)
    return {"as_of": as_of, "targets": [progress_out(p, as_of) for p in progress]}


@router.post(
    "/targets",
    response_model=TargetOut,
    status_code=201,
    summary="Add a target",
    responses=problem_responses(409, 413),
)
async def create_target(
    body: TargetIn, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict:
    target = _target_from(body, str(uuid.uuid4()))
    async with writing(request, principal) as uow:
        repo = TargetRepository(uow.db)
        if await repo.get_by_code(target.code):
            raise ProblemError(409, "Conflict", f"a target with code {target.code!r} exists")
        await repo.add(target, uow.now)
    return target_out(target)


@router.get(
    "/targets/{target_id}",
    response_model=TargetOut,
    summary="One target",
    responses=problem_responses(404),
)
async def get_target(target_id: str, db: ReadConnection) -> dict:
    target = await ReportQueries(db).targets.get(target_id)
    if target is None:
        raise _not_found("target")
    return target_out(target)


@router.put(
    "/targets/{target_id}",
    response_model=TargetOut,
    summary="Replace a target",
    responses=problem_responses(404, 409, 413),
)
async def replace_target(
    target_id: str,
    body: TargetIn,
    request: Request,
    principal: Annotated[Principal, Depends(writer)],
) -> dict:
    target = _target_from(body, target_id)
    async with writing(request, principal) as uow:
        repo = TargetRepository(uow.db)
        other = await repo.get_by_code(target.code)
        if other is not None and other.id != target_id:
            raise ProblemError(409, "Conflict", f"a target with code {target.code!r} exists")
        if not await repo.replace(target, uow.now):
            raise _not_found("target")
    return target_out(target)


@router.delete(
    "/targets/{target_id}",
    status_code=204,
    summary="Remove a target",
    responses=problem_responses(404),
)
async def delete_target(
    target_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> Response:
    async with writing(request, principal) as uow:
        if not await TargetRepository(uow.db).remove(target_id):
            raise _not_found("target")
    return Response(status_code=204)


@router.get(
    "/targets/{target_id}/progress",
    response_model=ProgressOut,
    summary="Progress against one target",
    responses=problem_responses(404),
)
async def target_progress(target_id: str, db: ReadConnection, as_of: Period = None) -> dict:
    queries = ReportQueries(db)
    target = await queries.targets.get(target_id)
    if target is None:
        raise _not_found("target")
    as_of = as_of or last_complete_period()
    return progress_out(await queries.progress(target, as_of), as_of)
