from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: str = "reporting"
    port: int = 8003
    # Records per projection transaction when a backlog waits: each batch pays a fixed toll of
    # round trips (inbox check, generation lock, progress row, commit, offsets), so large batches
    # project several times faster; a quiet topic still yields small batches at once.
    consumer_batch_size: int = 5000
    # Outside development every read needs a token with `reports:read`; in development reads are
    # open (small cells hidden all the same) unless this asks for the token too.
    require_auth: bool = False

    @property
    def reads_need_token(self) -> bool:
        return self.require_auth or not self.development
