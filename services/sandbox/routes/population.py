"""The population registry: batch identity checks (up to 1,000 persons a request) under the
same request faults as the banks (latency, 503, answers held past the caller's timeout), and
the admin endpoints that seed it."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from ..population import MAX_CHECKS_PER_REQUEST
from ..schemas import IdentityChecksIn, PersonList
from ..simulator import Sandbox
from .common import SandboxDep, guarded, parse_body, reply

router = APIRouter()


@router.post("/population/identity-checks")
async def identity_checks(request: Request, sandbox: SandboxDep) -> Response:
    raw = await request.body()
    return await guarded(sandbox, functools.partial(check_identities, sandbox, raw))


def check_identities(sandbox: Sandbox, raw: bytes) -> Response:
    body = parse_body(IdentityChecksIn, raw)
    if isinstance(body, Response):
        return body
    registry = sandbox.population
    registry.checks += 1
    asked = [(p.national_id, p.full_name, p.date_of_birth) for p in body.persons]
    answers = [answer.as_dict() for answer in registry.check(asked)]
    return reply({"results": answers, "max_persons": MAX_CHECKS_PER_REQUEST})


@router.post("/admin/population")
async def seed_population(request: Request, sandbox: SandboxDep) -> Response:
    raw = await request.body()
    body = parse_body(PersonList, b'{"persons":' + raw + b"}")
    if isinstance(body, Response):
        return body
    registry = sandbox.population
    count = registry.seed(
        (p.national_id, p.full_name, p.date_of_birth, p.status, p.date_of_death)
        for p in body.persons
    )
    return reply({"seeded": count, "persons": len(registry)})


@router.get("/admin/population")
async def population_stats(sandbox: SandboxDep) -> Response:
    registry = sandbox.population
    return reply(
        {
            "persons": len(registry),
            "checks": registry.checks,
            "persons_checked": registry.persons_checked,
        }
    )
