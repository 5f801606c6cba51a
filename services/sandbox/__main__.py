"""python -m services.sandbox --host 127.0.0.1 --port 8010 --callback-base http://127.0.0.1:8002"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn

from shared.observability import configure_logging

from .app import create_app
from .config import SandboxSettings


def parse_args(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m services.sandbox",
        description="Bank and post-office sandbox (settings also from SANDBOX_* variables).",
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--callback-base", help="base URL of the payout service's webhooks")
    parser.add_argument("--webhook-secrets", help='JSON object: {"970436": "secret", ...}')
    parser.add_argument("--iso-bins", help="comma-separated BINs that take ISO 20022 files")
    parser.add_argument("--webhook-batch-size", type=int)
    parser.add_argument("--webhook-delay-ms", type=int)
    parser.add_argument("--webhook-max-attempts", type=int)
    parser.add_argument("--webhook-retry-base-ms", type=int)
    parser.add_argument("--webhook-concurrency", type=int)
    parser.add_argument("--settlement-delay-ms", type=int)
    parser.add_argument("--data-dir", help="directory of the scratch files (default: temp)")
    parser.add_argument("--log-level")
    args = vars(parser.parse_args(argv))
    overrides = {key: value for key, value in args.items() if value is not None}
    if "webhook_secrets" in overrides:
        overrides["webhook_secrets"] = json.loads(overrides["webhook_secrets"])
    return overrides


def main(argv: list[str] | None = None) -> None:
    settings = SandboxSettings(**parse_args(argv))
    configure_logging(settings.log_level.upper())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
