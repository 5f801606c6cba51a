"""What every service offers: health, readiness, metrics, problem+json errors, safe settings,
and the main job starting all three services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.intake.settings import IntakeSettings
from services.payout.settings import PayoutSettings
from services.reporting.settings import ReportingSettings
from tests.support import tokens

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestSettings:
    def test_production_without_a_signing_key_refuses_to_start(self):
        with pytest.raises(RuntimeError, match="INTAKE_SIGNING_KEY_FILE"):
            IntakeSettings(environment="production").signing_key()

    def test_production_with_a_signing_key_starts(self):
        assert (
            IntakeSettings(environment="production", **tokens.trust("intake")).signing_key().kid
            == tokens.KEY.kid
        )

    @pytest.mark.parametrize("settings_cls", [PayoutSettings, ReportingSettings])
    def test_payout_and_reporting_need_no_secret_to_verify_tokens(self, settings_cls):
        webhooks = (
            {"webhook_secrets": {"970436": "w" * 32}} if settings_cls is PayoutSettings else {}
        )
        settings = settings_cls(environment="production", **webhooks)
        assert settings.environment == "production" and not hasattr(settings, "jwt_secret")

    def test_no_database_or_kafka_settings_means_embedded(self, tmp_path):
        settings = IntakeSettings(data_dir=tmp_path)
        assert settings.embedded
        assert settings.resolved_database_url().startswith("sqlite+aiosqlite:///")


class TestMainJob:
    def test_stack_starts_three_services_that_answer_readyz(self, tmp_path):
        ports = {name: free_port() for name in ("INTAKE", "PAYOUT", "REPORTING")}
        env = {**os.environ}
        for name, port in ports.items():
            env[f"{name}_PORT"] = str(port)
            env[f"{name}_DATA_DIR"] = str(tmp_path)
            env.pop(f"{name}_DATABASE_URL", None)
            env.pop(f"{name}_KAFKA_BOOTSTRAP_SERVERS", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "services.stack"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 90
            answers: dict[str, dict] = {}
            while time.monotonic() < deadline and len(answers) < 3:
                assert process.poll() is None, process.stderr.read().decode()[-3000:]
                for name, port in ports.items():
                    try:
                        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                    except httpx.HTTPError:
                        continue
                    if response.status_code == 200:
                        answers[name] = response.json()
                time.sleep(0.2)
            assert set(answers) == set(ports)
            for answer in answers.values():
                assert answer == {"status": "ready", "checks": {"database": "ok", "bus": "ok"}}

            intake = f"http://127.0.0.1:{ports['INTAKE']}"
            assert httpx.get(f"{intake}/healthz").json() == {"status": "alive"}
            missing = httpx.get(f"{intake}/no-such-thing")
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert missing.json()["status"] == 404
            metrics = httpx.get(f"{intake}/metrics").text
            assert "http_requests_total" in metrics
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("the stack did not stop on SIGINT")
        assert process.returncode == 0
