"""The tests' token issuer: an Ed25519 key (intake's signing key in the tests), its JWKS document
in a file (what payout and reporting trust), tokens for clients and people, and the settings
that make each service use them.

    from tests.support.tokens import token, trust
    IntakeSettings(**trust("intake"), ...)          # signs with, and verifies, the tests' key
    PayoutSettings(**trust("payout"), ...)          # verifies with the tests' JWKS file
    headers = {"Authorization": f"Bearer {token({'payout:read'})}"}
    token(sub="bhxh-checker", kind="person", roles={"checker"}, agency="BHXH")
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.auth import AUDIENCE, ISSUER, PERSON, SigningKey, issue_token, load_signing_key
from shared.authority import scopes_of_roles

_DIR = Path(tempfile.gettempdir()) / f"vn-benefits-test-keys-{os.getuid()}"
KEY_FILE = _DIR / "signing-key.pem"
JWKS_FILE = _DIR / "jwks.json"

# One key for every test process (the file is created once, atomically).
KEY: SigningKey = load_signing_key(KEY_FILE, create=True)
JWKS: dict[str, Any] = KEY.jwks()
if not JWKS_FILE.exists() or json.loads(JWKS_FILE.read_text() or "{}") != JWKS:
    _DIR.mkdir(parents=True, exist_ok=True)
    _draft = JWKS_FILE.with_name(f".jwks.{os.getpid()}.json")
    _draft.write_text(json.dumps(JWKS))
    _draft.replace(JWKS_FILE)


def trust(service: str) -> dict[str, Any]:
    """Settings overrides for `service` to accept the tests' tokens: intake signs with the
    tests' key (so its own tokens verify everywhere); payout and reporting read its JWKS file."""
    if service == "intake":
        return {"signing_key_file": KEY_FILE}
    return {"jwks_file": JWKS_FILE}


def env(service: str) -> dict[str, str]:
    """The same, as environment variables for a service run in a process of its own."""
    prefix = service.upper()
    if service == "intake":
        return {f"{prefix}_SIGNING_KEY_FILE": str(KEY_FILE)}
    return {f"{prefix}_JWKS_FILE": str(JWKS_FILE)}


def token(
    scopes: Iterable[str] = (),
    *,
    sub: str = "tests",
    kind: str = "client",
    roles: Iterable[str] = (),
    agency: str | None = None,
    communes: Iterable[str] = (),
    name: str | None = None,
    ttl_seconds: int = 3600,
    now: float | None = None,
    key: SigningKey = KEY,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
) -> str:
    """A token of the tests' issuer. A person's scopes are their roles' (`scopes` is ignored
    for them: the services derive them from the roles too)."""
    roles = frozenset(roles)
    return issue_token(
        key,
        sub,
        scopes_of_roles(roles) if kind == PERSON else scopes,
        ttl_seconds,
        now,
        issuer=issuer,
        audience=audience,
        kind=kind,
        roles=roles,
        agency=agency,
        communes=communes,
        name=name if name is not None or kind != PERSON else f"Cán bộ {sub}",
    )


def bearer(scopes: Iterable[str] = (), **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(scopes, **kwargs)}"}
