"""Payout settings: environment variables with the `PAYOUT_` prefix (maps and lists as JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.payout.adapters.banks.registry import BankChannelSettings, webhook_secrets_problem
from shared.settings import ServiceSettings

FallbackPolicy = Literal["none", "cash"]
WorkerRole = Literal["relay", "consumer", "verification", "submission", "sweeper", "scheduler"]
ALL_ROLES: tuple[WorkerRole, ...] = (
    "relay",
    "consumer",
    "verification",
    "submission",
    "sweeper",
    "scheduler",
)


class PayoutSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYOUT_", extra="ignore")

    service_name: str = "payout"
    port: int = 8002

    # Banks and the post office (the sandbox in development).
    bank_base_url: str = "http://127.0.0.1:8010"
    bank_base_urls: dict[str, str] = Field(default_factory=dict)  # counterparty -> URL
    webhook_secrets: dict[str, str] = Field(default_factory=dict)  # counterparty -> secret
    webhook_tolerance_seconds: int = 300
    iso_bins: list[str] = Field(default_factory=lambda: ["970405"])
    bank_connect_timeout_seconds: float = 3.0
    bank_read_timeout_seconds: float = 15.0
    bank_max_connections: int = 50

    # Cycles and batches.
    batch_size: int = Field(2000, ge=1, le=10_000)
    # Entitlements per transaction while a cycle is created: bounds its memory, not its size.
    cycle_chunk_size: int = Field(10_000, ge=1, le=1_000_000)
    cycle_day: int = Field(5, ge=1, le=28)  # day of the month (Vietnam time) the cycle starts
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = Field(60.0, gt=0)

    # Submission, retries and status inquiries.
    submit_concurrency: int = Field(4, ge=1, le=64)
    retry_base_seconds: float = Field(1.0, gt=0)
    retry_max_seconds: float = Field(300.0, gt=0)
    lease_seconds: float = Field(120.0, gt=0)
    status_inquiry_after_seconds: float = Field(60.0, gt=0)
    status_inquiry_concurrency: int = Field(16, ge=1, le=256)
    worker_idle_seconds: float = Field(0.2, gt=0)

    # Account verification.
    verification_batch_size: int = Field(200, ge=1)
    verification_concurrency: int = Field(16, ge=1, le=256)

    # What `python -m services.payout worker` runs; several processes may split the roles.
    worker_roles: list[WorkerRole] = Field(default_factory=lambda: list(ALL_ROLES))

    # What happens to a period's payment when the bank refuses it for good.
    permanent_failure_fallback: FallbackPolicy = "none"

    @model_validator(mode="after")
    def _refuse_unusable_secrets_outside_development(self) -> PayoutSettings:
        # The bank channels' rule, checked here too so the process refuses to start with them.
        problem = webhook_secrets_problem(self.environment, self.webhook_secrets)
        if problem:
            raise ValueError(f"payout: {problem} ({self.env_name('webhook_secrets')})")
        return self

    def bank_channels(self) -> BankChannelSettings:
        """The bank adapters' settings derived from these."""
        return BankChannelSettings(
            environment=self.environment,
            base_url=self.bank_base_url,
            base_urls=self.bank_base_urls,
            iso_bins=self.iso_bins,
            webhook_secrets=self.webhook_secrets,
            webhook_tolerance_seconds=self.webhook_tolerance_seconds,
            connect_timeout_seconds=self.bank_connect_timeout_seconds,
            read_timeout_seconds=self.bank_read_timeout_seconds,
            write_timeout_seconds=self.bank_read_timeout_seconds,
            max_connections=self.bank_max_connections,
            max_keepalive_connections=self.bank_max_connections,
        )
