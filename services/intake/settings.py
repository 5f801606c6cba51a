from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    service_name: str = "intake"
    port: int = 8001
    token_ttl_seconds: int = 3600
    # Development only: add the documented dev clients (portal, bhxh, dolisa, esc, admin with the
    # secret `<id>-dev-secret`) at startup if they are missing. Never done in other environments.
    seed_dev_clients: bool = True
    # PostgreSQL: at most this many concurrent filings share one transaction (0: one per filing).
    filing_batch_size: int = 256
    # A filing that finds the writer idle waits this long for others to share its transaction:
    # a transaction's fixed cost (round trips, commit, the relay's wake-up) dwarfs a filing's.
    # Under load the next batch gathers during the current write and never waits.
    filing_batch_wait_ms: float = 20.0
    # Uploads (roll, payment methods): a body is refused (413) as soon as it passes
    # upload_max_bytes, reading stops past upload_max_rows, an XLSX workbook may unpack to at most
    # upload_max_unpacked_bytes, and reading one table takes at most upload_parse_seconds.
    upload_max_bytes: int = 50 * 1024 * 1024
    upload_max_rows: int = 200_000
    upload_max_unpacked_bytes: int = 256 * 1024 * 1024
    upload_parse_seconds: float = 120.0

    @property
    def seeds_dev_clients(self) -> bool:
        return self.environment == "development" and self.seed_dev_clients
