"""People who sign in (officers, post-office staff, commune officials, leaders, administrators):
registration, password sign-in with a lockout, and the development users."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.intake.adapters import repository
from services.intake.adapters.repository import Executor
from services.intake.domain.errors import Conflict, FieldError, Invalid
from services.intake.service_layer.common import IntakeUnitOfWork
from shared.admin_units import find_unit, known_list_dates
from shared.auth import hash_secret, verify_secret
from shared.authority import (
    AGENCIES,
    COMMUNE_ROLES,
    PEOPLE,
    PERSON_ROLES,
    UNBOUND_ROLES,
    binding_problems,
)

SEEDER = "system"  # the audit trail's actor for the development users
USERNAME_MAX = 100
PASSWORD_MIN = 10
PASSWORD_MAX = 200  # scrypt reads it all: a bound keeps a sign-in cheap to refuse


@dataclass(frozen=True, slots=True)
class DemoUser:
    password: str
    roles: tuple[str, ...]
    agency: str | None
    communes: tuple[str, ...]
    name: str


def _demo_name(username: str) -> str:
    return {
        "post-office": "Bưu điện Vĩnh Yên",
        "commune-official": "Cán bộ phường Tích Sơn",
        "leader": "Lãnh đạo tỉnh",
        "administrator": "Quản trị hệ thống",
    }.get(username, "Cán bộ " + username.replace("-", " ").upper())


# Development only (settings.environment == "development"), created at startup when missing: the
# people of shared.authority.PEOPLE (the authority matrix signs in as each), password
# `<username>-dev-password`. The demo prints this table.
DEMO_USERS: dict[str, DemoUser] = {
    username: DemoUser(
        f"{username}-dev-password",
        tuple(sorted(person.roles)),
        person.agency,
        tuple(sorted(person.communes)),
        _demo_name(username),
    )
    for username, person in PEOPLE.items()
}


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    roles: frozenset[str]
    agency: str | None
    communes: frozenset[str]
    active: bool
    locked_until: datetime | None = None
    created_at: datetime | None = None

    def view(self) -> dict[str, Any]:
        """What the API shows of a user: never the password's hash."""
        return {
            "username": self.username,
            "name": self.name,
            "roles": sorted(self.roles),
            "agency": self.agency,
            "communes": sorted(self.communes),
            "active": self.active,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def _of_row(row: Any) -> User:
    return User(
        row.username,
        row.name,
        frozenset(row.roles.split()),
        row.agency,
        frozenset(row.communes.split()),
        row.active,
        row.locked_until,
        row.created_at,
    )


def _known_commune(code: str) -> bool:
    return any(find_unit(code, day) is not None for day in known_list_dates())


def check_user(
    username: str,
    password: str,
    name: str,
    roles: list[str],
    agency: str | None,
    communes: list[str],
) -> None:
    """Every reason these values cannot be a user, each at its field (422)."""
    errors: list[FieldError] = []
    if (
        not username
        or len(username) > USERNAME_MAX
        or not all(c.isascii() and (c.isalnum() or c in "-_.@") for c in username)
    ):
        errors.append(
            FieldError(
                "/username", f"has 1 to {USERNAME_MAX} letters, digits, '-', '_', '.' or '@'"
            )
        )
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        errors.append(FieldError("/password", f"has {PASSWORD_MIN} to {PASSWORD_MAX} characters"))
    if not name.strip() or len(name) > 200:
        errors.append(FieldError("/name", "has 1 to 200 characters"))
    if not roles:
        errors.append(FieldError("/roles", "names at least one role"))
    for i, role in enumerate(roles):
        if role not in PERSON_ROLES:
            errors.append(
                FieldError(f"/roles/{i}", f"is not a role (known: {', '.join(PERSON_ROLES)})")
            )
    known = set(roles) & set(PERSON_ROLES)
    if agency is not None and agency not in AGENCIES:
        errors.append(FieldError("/agency", f"is one of {', '.join(AGENCIES)}"))
    elif agency is None and known - UNBOUND_ROLES:
        errors.append(
            FieldError(
                "/agency",
                f"is required for the role(s) {', '.join(sorted(known - UNBOUND_ROLES))}",
            )
        )
    if not communes and known & COMMUNE_ROLES:
        errors.append(
            FieldError(
                "/communes",
                f"are required for the role(s) {', '.join(sorted(known & COMMUNE_ROLES))}",
            )
        )
    for i, code in enumerate(communes):
        if not _known_commune(code):
            errors.append(FieldError(f"/communes/{i}", "is not a commune code of the province"))
    if not errors and binding_problems(known, agency, frozenset(communes)):
        errors.append(
            FieldError("/roles", "; ".join(binding_problems(known, agency, set(communes))))
        )
    if errors:
        raise Invalid(errors, "the user has invalid fields")


async def add_user(
    uow: IntakeUnitOfWork,
    username: str,
    password: str,
    name: str,
    roles: list[str],
    agency: str | None = None,
    communes: list[str] | None = None,
    active: bool = True,
) -> User:
    communes = communes or []
    check_user(username, password, name, roles, agency, communes)
    hashed = await asyncio.to_thread(hash_secret, password)
    row = _row(username, hashed, name, roles, agency, communes, active, uow.actor, uow.now)
    if not await repository.insert_user_if_absent(uow, row):
        raise Conflict(f"the username {username!r} is taken")
    uow.audit(
        "user.registered",
        "user",
        username,
        {"roles": row["roles"], "agency": agency, "communes": row["communes"], "active": active},
    )
    return User(
        username,
        name,
        frozenset(roles),
        agency,
        frozenset(communes),
        active,
        None,
        uow.now,
    )


def _row(
    username: str,
    password_hash: str,
    name: str,
    roles: list[str] | tuple[str, ...],
    agency: str | None,
    communes: list[str] | tuple[str, ...],
    active: bool,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "username": username,
        "password_hash": password_hash,
        "name": name,
        "roles": " ".join(sorted(set(roles))),
        "agency": agency,
        "communes": " ".join(sorted(set(communes))),
        "active": active,
        "failed_attempts": 0,
        "locked_until": None,
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }


async def list_users(db: Executor) -> list[User]:
    return [_of_row(r) for r in await repository.all_users(db)]


async def sign_in(
    uow: IntakeUnitOfWork,
    username: str,
    password: str,
    *,
    lockout_failures: int,
    lockout_minutes: int,
) -> User | None:
    """The user when `password` is theirs and they may sign in (active, not locked), else None,
    whatever the reason: the caller tells no one which part was wrong. A wrong password counts
    towards the lockout; the right one resets the count. Commit either way."""
    if len(username) > USERNAME_MAX or "\x00" in username or len(password) > PASSWORD_MAX:
        await asyncio.to_thread(verify_secret, password[:PASSWORD_MAX], _DUMMY_HASH)
        return None
    stored = await repository.user(uow, username)
    if stored is None:
        # Spend the same time as a real check so usernames cannot be probed by timing.
        await asyncio.to_thread(verify_secret, password, _DUMMY_HASH)
        return None
    right = await asyncio.to_thread(verify_secret, password, stored.password_hash)
    now = uow.now
    locked = stored.locked_until is not None and _aware(stored.locked_until) > now
    if locked:
        return None  # not even the right password opens a locked account before its time
    if not right:
        await repository.record_sign_in_failure(
            uow, username, lockout_failures, now + timedelta(minutes=lockout_minutes), now
        )
        uow.audit("user.sign_in_failed", "user", username, {})
        return None
    if not stored.active:
        return None
    if stored.failed_attempts or stored.locked_until is not None:
        await repository.record_sign_in_success(uow, username, now)
    return _of_row(stored)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def seed_demo_users(uow: IntakeUnitOfWork) -> list[str]:
    """Add the development users that are missing; never call outside development."""
    present = {r.username for r in await repository.all_users(uow)}
    missing = [u for u in DEMO_USERS if u not in present]
    hashes = await asyncio.gather(
        *(asyncio.to_thread(hash_secret, DEMO_USERS[u].password) for u in missing)
    )
    added = []
    for username, hashed in zip(missing, hashes, strict=True):
        demo = DEMO_USERS[username]
        row = _row(
            username,
            hashed,
            demo.name,
            demo.roles,
            demo.agency,
            demo.communes,
            True,
            SEEDER,
            uow.now,
        )
        if await repository.insert_user_if_absent(uow, row):
            uow.audit(
                "user.registered",
                "user",
                username,
                {"roles": row["roles"], "agency": demo.agency, "development_seed": True},
            )
            added.append(username)
    return added


_DUMMY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64
