"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT = "development"
AUDIENCE = "vn-benefits-api"  # the `aud` of the tokens the services accept (shared.auth.AUDIENCE)
# HMAC-SHA256 keys (webhooks) of fewer bytes than the digest are guessable offline.
MIN_SECRET_BYTES = 32
RUN_DIR = Path(".run")


def secret_problem(secret: str, what: str) -> str | None:
    """Why `secret` may not be used outside development, or None. Never quotes the secret."""
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        return f"{what} is {size} bytes; outside development it must be at least {MIN_SECRET_BYTES} bytes"
    return None


class ServiceSettings(BaseSettings):
    """Without a database URL or Kafka servers the service runs on the embedded default:
    SQLite files and the embedded event log under `data_dir`."""

    # Errors never echo the values given: they hold secrets.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    # Anything but an explicit "development" is production: placeholder secrets are refused and
    # no development client or user is created.
    environment: str = "production"
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    data_dir: Path = RUN_DIR / "embedded"
    topic_partitions: int = 6
    topic_prefix: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Bearer tokens are verified with public keys only. `oidc_issuer`: the `iss` of the tokens
    # trusted (payout, reporting: intake's unless set; intake: an external issuer accepted
    # alongside its own), addressed to `oidc_audience`; its keys from `jwks_file`, else
    # `jwks_url`, else discovered at `<oidc_issuer>/.well-known/openid-configuration`.
    oidc_issuer: str | None = None
    oidc_audience: str = AUDIENCE
    jwks_url: str | None = None
    jwks_file: Path | None = None
    log_level: str = "INFO"
    # Origins (scheme://host:port) of an officers' console served elsewhere that may call this
    # service from a browser (CORS, bearer tokens only); none by default.
    console_origins: list[str] = []
    relay_batch_size: int = 2000
    relay_concurrency: int = 4
    consumer_batch_size: int = 500
    # A worker process has no API: when set, it serves its own /metrics on this port.
    worker_metrics_port: int = 0

    service_name: str = "service"

    @classmethod
    def for_local_run(cls, **values: Any) -> Self:
        """Settings of a run on one machine (the stack, the demo): development unless
        `<PREFIX>_ENVIRONMENT` says otherwise."""
        prefix = cls.model_config.get("env_prefix", "")
        values.setdefault("environment", os.environ.get(f"{prefix}ENVIRONMENT") or DEVELOPMENT)
        return cls(**values)

    @property
    def development(self) -> bool:
        return self.environment == DEVELOPMENT

    def env_name(self, field: str) -> str:
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap_servers is None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"

    @property
    def event_log_path(self) -> Path:
        return self.data_dir / "events.db"


def trusting_local_intake(
    settings_class: type[ServiceSettings], intake: ServiceSettings
) -> dict[str, Any]:
    """Settings overrides for payout or reporting run beside `intake` on one machine (the stack,
    the demo): its JWKS URL, unless `<PREFIX>_OIDC_ISSUER`, `_JWKS_URL` or `_JWKS_FILE` say
    otherwise."""
    prefix = settings_class.model_config.get("env_prefix", "")
    if any(os.environ.get(f"{prefix}{name}") for name in ("OIDC_ISSUER", "JWKS_URL", "JWKS_FILE")):
        return {}
    return {"jwks_url": f"http://{intake.host}:{intake.port}/.well-known/jwks.json"}
