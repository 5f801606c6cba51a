"""In production intake refuses to start without its token signing key (an Ed25519 private
key file: never generated there, never echoed), payout and reporting hold no key that can sign
(they verify with public keys only), and payout refuses missing or placeholder webhook secrets:
settings do not load, and the real `python -m services.<service> api` process exits with an
error instead of serving."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from services.intake import bootstrap as intake_bootstrap
from services.intake.settings import SIGNING_KEY_NAME, IntakeSettings
from services.payout import bootstrap as payout_bootstrap
from services.payout.settings import PayoutSettings
from services.reporting import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from shared.auth import SigningKey, TokenVerifier
from tests.support import tokens
from tests.support.sandbox import free_port

ROOT = Path(__file__).resolve().parents[2]
STRONG_WEBHOOKS = {
    "970436": "vault-webhook-secret-vcb-9c1e2b7a",
    "VNPOST": "vault-webhook-secret-vnpost-5d8f",
}
SETTINGS = {"intake": IntakeSettings, "payout": PayoutSettings, "reporting": ReportingSettings}


def _good(service: str) -> dict:
    values: dict = {"environment": "production", **tokens.trust(service)}
    if service == "payout":
        values["webhook_secrets"] = STRONG_WEBHOOKS
    return values


def _pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestIntakeSigningKey:
    def test_production_without_a_key_refuses_to_start_and_names_the_setting(self, tmp_path):
        settings = IntakeSettings(environment="production", data_dir=tmp_path)
        with pytest.raises(RuntimeError, match="INTAKE_SIGNING_KEY_FILE"):
            intake_bootstrap.create_app(settings)
        assert not (tmp_path / SIGNING_KEY_NAME).exists(), "never generated outside development"

    def test_production_with_a_missing_file_refuses_to_start(self, tmp_path):
        settings = IntakeSettings(
            environment="production", signing_key_file=tmp_path / "nowhere.pem"
        )
        with pytest.raises(RuntimeError, match="does not exist"):
            settings.signing_key()
        assert not (tmp_path / "nowhere.pem").exists()

    @pytest.mark.parametrize(
        "key",
        [
            ec.generate_private_key(ec.SECP256R1()),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ],
        ids=["P-256", "RSA"],
    )
    def test_a_key_of_another_kind_is_refused_without_echoing_it(self, key, tmp_path):
        path = tmp_path / "key.pem"
        pem = _pem(key)
        path.write_bytes(pem)
        with pytest.raises(RuntimeError) as refused:
            IntakeSettings(environment="production", signing_key_file=path).signing_key()
        message = str(refused.value)
        assert "Ed25519" in message and "INTAKE_SIGNING_KEY_FILE" in message
        body = pem.decode().splitlines()[1]
        assert body[:16] not in message

    def test_a_file_that_is_no_key_is_refused(self, tmp_path):
        path = tmp_path / "key.pem"
        path.write_text("not a key at all")
        with pytest.raises(RuntimeError, match="holds no Ed25519 private key"):
            IntakeSettings(environment="production", signing_key_file=path).signing_key()

    def test_production_takes_a_real_key(self, tmp_path):
        path = tmp_path / "key.pem"
        key = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(_pem(key))
        loaded = IntakeSettings(environment="production", signing_key_file=path).signing_key()
        assert loaded.kid == SigningKey.of(key).kid

    def test_development_generates_a_private_file_once(self, tmp_path):
        settings = IntakeSettings(environment="development", data_dir=tmp_path)
        first = settings.signing_key()
        path = tmp_path / SIGNING_KEY_NAME
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert settings.signing_key().kid == first.kid
        assert b"PRIVATE KEY" in path.read_bytes()


def _private_keys(value: Any, seen: set[int] | None = None, depth: int = 0) -> list[str]:
    """Anything reachable from `value` that could sign a token."""
    seen = seen if seen is not None else set()
    if id(value) in seen or depth > 8:
        return []
    seen.add(id(value))
    signing = (
        SigningKey,
        ed25519.Ed25519PrivateKey,
        ec.EllipticCurvePrivateKey,
        rsa.RSAPrivateKey,
    )
    if isinstance(value, signing):
        return [type(value).__name__]
    if isinstance(value, (str, bytes)):
        text = value if isinstance(value, str) else value.decode("latin-1")
        return ["a PEM private key"] if "PRIVATE KEY" in text else []
    found: list[str] = []
    if isinstance(value, dict):
        for item in value.values():
            found += _private_keys(item, seen, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            found += _private_keys(item, seen, depth + 1)
    elif hasattr(value, "__dict__") or hasattr(value, "__slots__"):
        names = list(getattr(value, "__dict__", {})) + list(getattr(value, "__slots__", ()))
        for name in names:
            found += _private_keys(getattr(value, name, None), seen, depth + 1)
    return found


class TestPublicKeysOnly:
    @pytest.mark.parametrize("settings_class", [PayoutSettings, ReportingSettings])
    def test_payout_and_reporting_settings_have_no_place_for_a_signing_key(self, settings_class):
        fields = set(settings_class.model_fields)
        assert not {"jwt_secret", "signing_key_file", "signing_key"} & fields
        assert {"oidc_issuer", "jwks_url", "jwks_file", "oidc_audience"} <= fields

    @pytest.mark.parametrize("service", ["payout", "reporting"])
    def test_a_jwt_secret_in_the_environment_is_not_taken(self, service, monkeypatch, tmp_path):
        monkeypatch.setenv(f"{service.upper()}_JWT_SECRET", "x" * 40)
        settings = SETTINGS[service](**_good(service), data_dir=tmp_path)
        assert not hasattr(settings, "jwt_secret")
        assert not _private_keys(settings)

    @pytest.mark.parametrize(
        ("service", "factory"),
        [("payout", payout_bootstrap.create_app), ("reporting", reporting_bootstrap.create_app)],
    )
    def test_the_apps_hold_a_verifier_and_no_private_key(self, service, factory, tmp_path):
        app = factory(SETTINGS[service](**_good(service), data_dir=tmp_path))
        verifier = app.state.token_verifier
        assert isinstance(verifier, TokenVerifier)
        assert not _private_keys(app.state._state), "payout and reporting cannot sign"
        assert _private_keys(tokens.KEY), "the search finds a signing key where there is one"

    def test_intake_alone_holds_the_signing_key(self, tmp_path):
        app = intake_bootstrap.create_app(IntakeSettings(**_good("intake"), data_dir=tmp_path))
        assert app.state.signing_key.kid == tokens.KEY.kid
        assert not _private_keys(app.state.token_verifier), "its verifier has public keys only"


class TestWebhookSecrets:
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
                environment="production", webhook_secrets=webhook_secrets, data_dir=tmp_path
            )

    @pytest.mark.parametrize("service", SETTINGS)
    def test_real_settings_are_taken_in_production(self, service, tmp_path):
        settings = SETTINGS[service](**_good(service), data_dir=tmp_path)
        assert settings.environment == "production"


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
    def test_the_intake_api_exits_with_an_error_without_its_signing_key(self, tmp_path):
        env = _service_env("intake", tmp_path, environment="production")
        process = subprocess.run(
            [sys.executable, "-m", "services.intake", "api"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode != 0
        assert "INTAKE_SIGNING_KEY_FILE" in process.stderr + process.stdout
        assert not (tmp_path / SIGNING_KEY_NAME).exists()

    def test_the_intake_api_exits_on_a_bad_key_file_without_printing_it(self, tmp_path):
        path = tmp_path / "key.pem"
        pem = _pem(ec.generate_private_key(ec.SECP256R1()))
        path.write_bytes(pem)
        env = _service_env("intake", tmp_path, signing_key_file=str(path))  # production
        process = subprocess.run(
            [sys.executable, "-m", "services.intake", "api"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode != 0
        assert "INTAKE_SIGNING_KEY_FILE" in process.stderr + process.stdout
        assert not echoes(pem.decode().splitlines()[1], process.stderr + process.stdout)

    def test_the_payout_process_exits_with_an_error_on_placeholder_webhook_secrets(self, tmp_path):
        env = _service_env(
            "payout",
            tmp_path,
            environment="production",
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
        assert "dev-secret-970436" not in process.stderr + process.stdout


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
        monkeypatch.delenv(f"{service.upper()}_SIGNING_KEY_FILE", raising=False)


class TestUnsetEnvironmentMeansProduction:
    @pytest.mark.parametrize("service", SETTINGS)
    def test_an_unset_environment_is_production(self, service, tmp_path, unset_environment):
        settings = SETTINGS[service](
            **{k: v for k, v in _good(service).items() if k != "environment"}, data_dir=tmp_path
        )
        assert settings.environment == "production"

    def test_an_unset_environment_refuses_to_sign_without_a_key(self, tmp_path, unset_environment):
        with pytest.raises(RuntimeError, match="INTAKE_SIGNING_KEY_FILE"):
            IntakeSettings(data_dir=tmp_path).signing_key()
        assert not (tmp_path / SIGNING_KEY_NAME).exists()

    def test_an_unset_environment_never_seeds_the_development_clients(
        self, tmp_path, unset_environment
    ):
        settings = IntakeSettings(**tokens.trust("intake"), data_dir=tmp_path)
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

    def test_a_31_byte_webhook_secret_is_refused_without_echoing_it(self, tmp_path):
        with pytest.raises(ValidationError) as refused:
            PayoutSettings(
                environment="production",
                data_dir=tmp_path,
                webhook_secrets={**STRONG_WEBHOOKS, "970418": SHORT_SECRET},
            )
        message = str(refused.value)
        assert "webhook secret for 970418" in message and "31 bytes" in message
        assert not echoes(SHORT_SECRET, message)

    def test_a_32_byte_webhook_secret_is_taken(self, tmp_path):
        secret = SHORT_SECRET + "0"
        settings = PayoutSettings(
            environment="production",
            data_dir=tmp_path,
            webhook_secrets={**STRONG_WEBHOOKS, "970418": secret},
        )
        assert settings.webhook_secrets["970418"] == secret

    def test_multibyte_characters_count_as_bytes(self, tmp_path):
        secret = "đ" * 16  # 16 characters, 32 bytes in UTF-8
        settings = PayoutSettings(
            environment="production",
            data_dir=tmp_path,
            webhook_secrets={**STRONG_WEBHOOKS, "970418": secret},
        )
        assert settings.webhook_secrets["970418"] == secret

    def test_a_31_byte_bank_channel_secret_is_refused_without_echoing_it(self):
        from services.payout.adapters.banks.registry import BankChannelSettings

        with pytest.raises(ValidationError) as refused:
            BankChannelSettings(environment="production", webhook_secrets={"VNPOST": SHORT_SECRET})
        assert "31 bytes" in str(refused.value) and not echoes(SHORT_SECRET, str(refused.value))

    def test_development_takes_short_secrets(self, tmp_path):
        assert PayoutSettings(
            environment="development", webhook_secrets={"970436": "x"}, data_dir=tmp_path
        ).webhook_secrets == {"970436": "x"}
