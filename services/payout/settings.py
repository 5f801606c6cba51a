from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class PayoutSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYOUT_", extra="ignore")

    service_name: str = "payout"
    port: int = 8002
