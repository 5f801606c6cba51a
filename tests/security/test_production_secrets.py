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
from services.sandbox.testing import free_port
from shared.settings import DEFAULT_JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]
STRONG_JWT = "a-real-secret-from-the-vault-4f1d0c9a8b7e6d5c"
STRONG_WEBHOOKS = {"970436": "vault-webhook-secret-vcb-9c1e2b7a", "VNPOST": "vault-webhook-secret-vnpost-5d8f"}
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
            SETTINGS[service](**{**_good(service), "jwt_secret": DEFAULT_JWT_SECRET, "data_dir": tmp_path})

    @pytest.mark.parametrize("service", SETTINGS)
    def test_real_secrets_are_taken_in_production(self, service, tmp_path):
        settings = SETTINGS[service](**_good(service), data_dir=tmp_path)
        assert settings.environment == "production" and settings.jwt_secret == STRONG_JWT

    @pytest.mark.parametrize("webhook_secrets", [{}, {"970436": "dev-secret-970436"}, {"970436": ""}],
                             ids=["none", "development placeholder", "empty"])
    def test_payout_refuses_missing_or_placeholder_webhook_secrets_in_production(self, webhook_secrets, tmp_path):
        with pytest.raises(ValidationError, match="webhook secret"):
            PayoutSettings(environment="production", jwt_secret=STRONG_JWT, webhook_secrets=webhook_secrets,
                           data_dir=tmp_path)

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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "PAYOUT_", "REPORTING_"))}
    prefix = service.upper()
    env.update({f"{prefix}_DATA_DIR": str(tmp_path), f"{prefix}_PORT": str(free_port())})
    env.update({f"{prefix}_{k.upper()}": v for k, v in values.items()})
    return env


class TestProcesses:
    @pytest.mark.parametrize("service", SETTINGS)
    def test_the_api_process_exits_with_an_error_on_default_secrets(self, service, tmp_path):
        extra = {"webhook_secrets": json.dumps(STRONG_WEBHOOKS)} if service == "payout" else {}
        env = _service_env(service, tmp_path, environment="production", **extra)
        process = subprocess.run([sys.executable, "-m", f"services.{service}", "api"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert process.returncode != 0
        assert "JWT secret" in process.stderr + process.stdout
        assert STRONG_WEBHOOKS["970436"] not in process.stderr + process.stdout  # secrets are never echoed

    def test_the_payout_process_exits_with_an_error_on_placeholder_webhook_secrets(self, tmp_path):
        env = _service_env("payout", tmp_path, environment="production", jwt_secret=STRONG_JWT,
                           webhook_secrets=json.dumps({"970436": "dev-secret-970436"}))
        process = subprocess.run([sys.executable, "-m", "services.payout", "api"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert process.returncode != 0
        assert "webhook secret" in process.stderr + process.stdout
        assert STRONG_JWT not in process.stderr + process.stdout
