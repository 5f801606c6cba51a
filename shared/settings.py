"""Settings every service shares; each service subclasses with its own env prefix."""
from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "development-only-jwt-secret-change-me"
RUN_DIR = Path(".run")


class ServiceSettings(BaseSettings):
    """Without a database URL or Kafka servers the service runs on the embedded default:
    SQLite files and the embedded event log under `data_dir`."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: str = "development"
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    data_dir: Path = RUN_DIR / "embedded"
    topic_partitions: int = 6
    topic_prefix: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_secret: str = DEFAULT_JWT_SECRET
    log_level: str = "INFO"
    relay_batch_size: int = 2000
    relay_concurrency: int = 4
    consumer_batch_size: int = 500
    # A worker process has no API: when set, it serves its own /metrics on this port.
    worker_metrics_port: int = 0

    service_name: str = "service"

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> "ServiceSettings":
        if self.environment == "production" and self.jwt_secret == DEFAULT_JWT_SECRET:
            raise ValueError(f"{self.service_name}: refusing to start in production with the default JWT secret")
        return self

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
