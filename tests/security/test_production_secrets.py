"""In production a service refuses to start with the development JWT secret (and payout with
missing or placeholder webhook secrets): its settings do not load, and the real
`python -m services.<service> api` process exits with an error instead of serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.intake.settings import IntakeSettings
from services.payout.settings import PayoutSettings
from services.reporting.settings import ReportingSettings
from shared.settings import DEFAULT_JWT_SECRET
from tests.support.sandbox import free_port

ROOT = Path(__file__).resolve().parents[2]
STRONG_JWT = "a-real-secret-from-the-vault-4f1d0c9a8b7e6d5c"
STRONG_WEBHOOKS = {
    "970436": "vault-webhook-secret-vcb-9c1e2b7a",
    "VNPOST": "vault-webhook-secret-vnpost-5d8f",
}
SETTINGS = {"intake": IntakeSettings, "payout": PayoutSettings, "reporting": ReportingSettings}


def _good(service: str) -> dict:
    values: dict = {"environment": "production", "jwt_secret": STRONG_JWT}
    if service == "payout":
        values["webhook_secrets"] = STRONG_WEBHOOKS
    return values


class TestSettings:
    @pytest.mark.parametrize("service", SETTINGS)
    def test_the_default_jwt_secret_is_refused_in_production(self, service, tmp_path):
        with pytest.raises(ValidationError, match="JWT secret"):
            SETTINGS[service](
                **{**_good(service), "jwt_secret": DEFAULT_JWT_SECRET, "data_dir": tmp_path}
            )

    @pytest.mark.parametrize("service", SETTINGS)
    def test_real_secrets_are_taken_in_production(self, service, tmp_path):
        settings = SETTINGS[service](**_good(service), data_dir=tmp_path)
        assert settings.environment == "production" and settings.jwt_secret == STRONG_JWT

    @pytest.mark.parametrize(
        "webhook_secrets",
        [{}, {"970436": "dev-secret-970436"}, {"970436": ""}],
        ids=["none", "development placeholder", "empty"],
    )
    def test_payout_refuses_missing_or_placeholder_webhook_secrets_in_production(
        self, webhook_secrets, tmp_path
    ):
        with pytest.raises(ValidationError, match="webhook secret"):
            PayoutSettings(
                environment="production",
                jwt_secret=STRONG_JWT,
                webhook_secrets=webhook_secrets,
                data_dir=tmp_path,
            )

    @pytest.mark.parametrize("service", SETTINGS)
    def test_the_default_is_refused_from_the_environment_too(self, service, tmp_path, monkeypatch):
        prefix = service.upper()
        monkeypatch.setenv(f"{prefix}_ENVIRONMENT", "production")
        monkeypatch.delenv(f"{prefix}_JWT_SECRET", raising=False)
        if service == "payout":
            monkeypatch.setenv("PAYOUT_WEBHOOK_SECRETS", json.dumps(STRONG_WEBHOOKS))
        with pytest.raises(ValidationError, match="JWT secret"):
            SETTINGS[service](data_dir=tmp_path)


def _service_env(service: str, tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTAKE_", "PAYOUT_", "REPORTING_"))
    }
    prefix = service.upper()
    env.update({f"{prefix}_DATA_DIR": str(tmp_path), f"{prefix}_PORT": str(free_port())})
    env.update({f"{prefix}_{k.upper()}": v for k, v in values.items()})
    return env


class TestProcesses:
    @pytest.mark.parametrize("service", SETTINGS)
    def test_the_api_process_exits_with_an_error_on_default_secrets(self, service, tmp_path):
        extra = {"webhook_secrets": json.dumps(STRONG_WEBHOOKS)} if service == "payout" else {}
        env = _service_env(service, tmp_path, environment="production", **extra)
        process = subprocess.run(
            [sys.executable, "-m", f"services.{service}", "api"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode != 0
        assert "JWT secret" in process.stderr + process.stdout
        assert (
            STRONG_WEBHOOKS["970436"] not in process.stderr + process.stdout
        )  # secrets are never echoed

    def test_the_payout_process_exits_with_an_error_on_placeholder_webhook_secrets(self, tmp_path):
        env = _service_env(
            "payout",
            tmp_path,
            environment="production",
            jwt_secret=STRONG_JWT,
            webhook_secrets=json.dumps({"970436": "dev-secret-970436"}),
        )
        process = subprocess.run(
            [sys.executable, "-m", "services.payout", "api"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode != 0
        assert "webhook secret" in process.stderr + process.stdout
        assert STRONG_JWT not in process.stderr + process.stdout


SHORT_SECRET = "s3cr3t-of-thirty-one-bytes-0000"  # 31 bytes
ENVIRONMENT_VARIABLES = (
    "INTAKE_ENVIRONMENT",
    "PAYOUT_ENVIRONMENT",
    "REPORTING_ENVIRONMENT",
    "PAYOUT_BANKS_ENVIRONMENT",
)


def echoes(secret: str, text: str) -> bool:
    """Whether any 8 consecutive characters of the secret appear in the text."""
    return any(secret[i : i + 8] in text for i in range(len(secret) - 7))


@pytest.fixture
def unset_environment(monkeypatch):
    """No `*_ENVIRONMENT` at all, as on a server where nobody set one."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for service in SETTINGS:
        monkeypatch.delenv(f"{service.upper()}_JWT_SECRET", raising=False)


class TestUnsetEnvironmentMeansProduction:
    @pytest.mark.parametrize("service", SETTINGS)
    def test_an_unset_environment_is_production(self, service, tmp_path, unset_environment):
        settings = SETTINGS[service](
            **{k: v for k, v in _good(service).items() if k != "environment"}, data_dir=tmp_path
        )
        assert settings.environment == "production"

    @pytest.mark.parametrize("service", SETTINGS)
    def test_an_unset_environment_refuses_the_default_jwt_secret(
        self, service, tmp_path, unset_environment
    ):
        extra = {"webhook_secrets": STRONG_WEBHOOKS} if service == "payout" else {}
        with pytest.raises(ValidationError, match="default JWT secret"):
            SETTINGS[service](data_dir=tmp_path, **extra)

    def test_an_unset_environment_never_seeds_the_development_clients(
        self, tmp_path, unset_environment
    ):
        settings = IntakeSettings(jwt_secret=STRONG_JWT, data_dir=tmp_path)
        assert not settings.seeds_dev_clients

    def test_an_unset_environment_refuses_development_webhook_secrets_of_the_bank_channels(
        self, unset_environment
    ):
        from services.payout.adapters.banks.registry import BankChannelSettings

        with pytest.raises(ValidationError, match="webhook secret for 970436"):
            BankChannelSettings(webhook_secrets={"970436": "dev-secret-970436"})

    def test_development_is_had_only_by_asking(self, tmp_path, unset_environment, monkeypatch):
        monkeypatch.setenv("INTAKE_ENVIRONMENT", "development")
        settings = IntakeSettings(data_dir=tmp_path)
        assert settings.environment == "development" and settings.seeds_dev_clients


class TestShortSecrets:
    def test_the_short_secret_is_31_bytes(self):
        assert len(SHORT_SECRET.encode()) == 31

    @pytest.mark.parametrize("service", SETTINGS)
    def test_a_31_byte_jwt_secret_is_refused_without_echoing_it(self, service, tmp_path):
        with pytest.raises(ValidationError) as refused:
            SETTINGS[service](
                **{**_good(service), "jwt_secret": SHORT_SECRET, "data_dir": tmp_path}
            )
        message = str(refused.value)
        assert (
            f"{service.upper()}_JWT_SECRET" in message
            and "31 bytes" in message
            and "at least 32" in message
        )
        assert not echoes(SHORT_SECRET, message)

    def test_a_32_byte_jwt_secret_is_taken(self, tmp_path):
        secret = SHORT_SECRET + "0"
        assert (
            IntakeSettings(
                environment="production", jwt_secret=secret, data_dir=tmp_path
            ).jwt_secret
            == secret
        )

    def test_multibyte_characters_count_as_bytes(self, tmp_path):
        secret = "đ" * 16  # 16 characters, 32 bytes in UTF-8
        assert (
            IntakeSettings(
                environment="production", jwt_secret=secret, data_dir=tmp_path
            ).jwt_secret
            == secret
        )

    def test_a_31_byte_webhook_secret_is_refused_without_echoing_it(self, tmp_path):
        with pytest.raises(ValidationError) as refused:
            PayoutSettings(
                environment="production",
                jwt_secret=STRONG_JWT,
                data_dir=tmp_path,
                webhook_secrets={**STRONG_WEBHOOKS, "970418": SHORT_SECRET},
            )
        message = str(refused.value)
        assert "webhook secret for 970418" in message and "31 bytes" in message
        assert not echoes(SHORT_SECRET, message) and not echoes(STRONG_JWT, message)

    def test_a_31_byte_bank_channel_secret_is_refused_without_echoing_it(self):
        from services.payout.adapters.banks.registry import BankChannelSettings

        with pytest.raises(ValidationError) as refused:
            BankChannelSettings(environment="production", webhook_secrets={"VNPOST": SHORT_SECRET})
        assert "31 bytes" in str(refused.value) and not echoes(SHORT_SECRET, str(refused.value))

    def test_development_takes_short_secrets(self, tmp_path):
        assert (
            PayoutSettings(
                environment="development",
                jwt_secret="short",
                webhook_secrets={"970436": "x"},
                data_dir=tmp_path,
            ).jwt_secret
            == "short"
        )

    def test_the_api_process_exits_on_a_short_secret_without_printing_it(self, tmp_path):
        env = _service_env(
            "intake", tmp_path, jwt_secret=SHORT_SECRET
        )  # no environment: production
        process = subprocess.run(
            [sys.executable, "-m", "services.intake", "api"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode != 0
        assert "INTAKE_JWT_SECRET" in process.stderr + process.stdout
        assert not echoes(SHORT_SECRET, process.stderr + process.stdout)
