from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.auth import ISSUER, SigningKey, load_signing_key
from shared.settings import ServiceSettings

SIGNING_KEY_NAME = "token-signing-key.pem"


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    service_name: str = "intake"
    port: int = 8001
    token_ttl_seconds: int = 3600
    # Intake signs tokens (clients' and people's) with this Ed25519 private key (PKCS#8 PEM),
    # the only key in the system that can sign. In development a missing one is generated under
    # data_dir (mode 0600); elsewhere the API refuses to start without it.
    signing_key_file: Path | None = None
    token_issuer: str = ISSUER  # the `iss` of intake's tokens
    # The URL intake is reached at, for the discovery document (default: the request's).
    public_url: str | None = None
    # People's sign-in: this many wrong passwords in a row lock the account for lockout_minutes.
    lockout_failures: int = 5
    lockout_minutes: int = 15
    # Development only: add the documented dev clients (portal, bhxh, dolisa, esc, admin with the
    # secret `<id>-dev-secret`) and users (service_layer/users.py DEMO_USERS) at startup if they
    # are missing. Never done in other environments.
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

    @property
    def resolved_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / SIGNING_KEY_NAME

    def signing_key(self) -> SigningKey:
        """The key intake signs with. In development a missing one is generated (mode 0600);
        elsewhere the API refuses to start without one, and says which setting to give."""
        if self.development:
            return load_signing_key(self.resolved_signing_key_file, create=True)
        name = self.env_name("signing_key_file")
        if self.signing_key_file is None:
            raise RuntimeError(
                f"intake: refusing to start in {self.environment} without a token signing key; "
                f"set {name} to an Ed25519 private key file (PKCS#8 PEM, e.g. "
                "`openssl genpkey -algorithm ed25519 -out key.pem`)"
            )
        try:
            return load_signing_key(self.signing_key_file)
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"intake: refusing to start in {self.environment}: {exc} ({name})"
            ) from None
