"""Sandbox settings: environment variables `SANDBOX_*`, overridden by command-line flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8010
    # Where outcome webhooks go: {callback_base}/v1/webhooks/banks/{bin}, .../iso/{bin}, .../vnpost
    callback_base: str = "http://127.0.0.1:8002"
    # counterparty (BIN or VNPOST) -> secret; a counterparty without one signs with
    # dev-secret-<counterparty>.
    webhook_secrets: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # Banks that take ISO 20022 files instead of the JSON transfer API.
    iso_bins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["970405"])
    webhook_batch_size: int = Field(500, ge=1)
    webhook_delay_ms: int = Field(50, ge=0)
    webhook_max_attempts: int = Field(12, ge=1)
    webhook_retry_base_ms: int = Field(200, ge=1)
    webhook_retry_max_ms: int = Field(30_000, ge=1)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_concurrency: int = Field(8, ge=1)
    # How long an accepted transfer stays PENDING before it settles or fails (0: at once).
    settlement_delay_ms: int = Field(0, ge=0)
    # Where the scratch files of accounts, transfers and persons go (the system's temporary
    # directory when unset); deleted on reset and shutdown.
    data_dir: Path | None = None
    log_level: str = "WARNING"

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _secrets_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        return value

    @field_validator("iso_bins", mode="before")
    @classmethod
    def _bins_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def callback_root(self) -> str:
        return self.callback_base.rstrip("/")
