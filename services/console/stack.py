"""The console in a run on one machine (`benefits demo`, `make run`, the stack): reporting serves
it at /console, and intake and payout accept calls from reporting's origin (CORS).

    specs = with_console(specs)     # services.stack.ServiceSpec list: intake, payout, reporting
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI

from services.console.router import ConsoleConfig, console_router

S = TypeVar("S")  # services.stack.ServiceSpec (not imported: the stack may import this module)


def _url(spec: Any) -> str:
    return f"http://{spec.settings.host}:{spec.settings.port}"


def console_url(specs: Sequence[Any]) -> str:
    """Where the console is served: reporting's /console."""
    return _url(next(s for s in specs if s.name == "reporting")) + "/console"


def with_console(specs: Sequence[S], **oidc: Any) -> list[S]:
    """The same services, reporting serving the console and the others allowing its origin.
    `oidc`: ConsoleConfig's oidc_issuer / oidc_client_id, for an external issuer."""
    by_name = {spec.name: spec for spec in specs}  # type: ignore[attr-defined]
    if not {"intake", "payout", "reporting"} <= set(by_name):
        return list(specs)
    config = ConsoleConfig(
        _url(by_name["intake"]), _url(by_name["payout"]), _url(by_name["reporting"]), **oidc
    )
    origin = _url(by_name["reporting"])
    out: list[S] = []
    for spec in specs:
        name = spec.name  # type: ignore[attr-defined]
        settings = spec.settings  # type: ignore[attr-defined]
        if name in ("intake", "payout"):
            origins = [*settings.console_origins, origin]
            spec = dataclasses.replace(  # type: ignore[type-var]
                spec, settings=settings.model_copy(update={"console_origins": origins})
            )
        elif name == "reporting":
            spec = dataclasses.replace(  # type: ignore[type-var]
                spec,
                create_app=_serving_console(spec.create_app, config),  # type: ignore[attr-defined]
            )
        out.append(spec)
    return out


def _serving_console(
    create_app: Callable[[Any], FastAPI], config: ConsoleConfig
) -> Callable[[Any], FastAPI]:
    def create(settings: Any) -> FastAPI:
        app = create_app(settings)
        app.include_router(console_router(config))
        return app

    return create
