"""People who sign in: registered and listed by an administrator (`users:write`). Passwords are
kept as salted scrypt hashes and never shown."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake.api.common import dumps, json_response, scopes, transact
from services.intake.service_layer import users
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.auth import Principal
from shared.web import problem_responses

router = APIRouter(tags=["access"])


class UserIn(BaseModel):
    # The password is taken as sent: no whitespace is stripped from it.
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=users.USERNAME_MAX)
    password: str = Field(max_length=users.PASSWORD_MAX, repr=False)
    name: str = Field(max_length=200, description="shown in the audit trail and on approvals")
    roles: list[str] = Field(
        max_length=6,
        description="maker, checker, post-office, commune-official, leader, administrator",
    )
    agency: str | None = Field(
        None,
        description="BHXH, DOLISA or ESC: required for every role but leader and administrator",
    )
    communes: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="commune codes: required for post-office and commune-official",
    )
    active: bool = True


@router.post(
    "/v1/users",
    status_code=201,
    summary="Register a person who signs in with a username and password",
    responses=problem_responses(401, 403, 409, 422),
)
async def add_user(
    request: Request, body: UserIn, principal: Principal = Depends(scopes("users:write"))
) -> Response:
    async def work(uow: IntakeUnitOfWork) -> users.User:
        return await users.add_user(
            uow,
            body.username,
            body.password,
            body.name,
            body.roles,
            body.agency,
            body.communes,
            body.active,
        )

    user = await transact(request, principal, work)
    return json_response(dumps(user.view()), 201)


@router.get(
    "/v1/users",
    summary="The people who sign in (never their passwords)",
    responses=problem_responses(401, 403),
)
async def list_users(
    request: Request, principal: Principal = Depends(scopes("users:write"))
) -> Response:
    async with request.app.state.runtime.engine.connect() as conn:
        listed = await users.list_users(conn)
    return json_response(dumps({"users": [u.view() for u in listed]}))
