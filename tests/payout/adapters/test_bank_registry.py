"""The registry picks a channel per counterparty from configuration."""

from __future__ import annotations

import httpx
import pytest

from services.payout.adapters.banks import (
    REASONS,
    BankChannel,
    BankChannelRegistry,
    BankChannelSettings,
    Iso20022Channel,
    NapasChannel,
    VnpostChannel,
    describe,
    is_permanent,
)


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as shared:
        yield shared


class TestRegistry:
    async def test_bins_default_to_napas_and_configured_ones_to_iso(self, client) -> None:
        registry = BankChannelRegistry(
            BankChannelSettings(iso_bins=["970405"], channel_styles={"970418": "iso20022"}), client
        )
        assert isinstance(registry.channel("970436"), NapasChannel)
        assert isinstance(registry.channel("970405"), Iso20022Channel)
        assert isinstance(registry.channel("970418"), Iso20022Channel)
        assert isinstance(registry.channel("VNPOST"), VnpostChannel)
        assert all(
            isinstance(registry.channel(c), BankChannel) for c in ("970436", "970405", "VNPOST")
        )
        assert registry.channel("970436") is registry.channel("970436")
        assert registry.channel("970436").counterparty == "970436"

    async def test_counterparty_must_be_bin_or_vnpost(self, client) -> None:
        registry = BankChannelRegistry(BankChannelSettings(), client)
        for bad in ("VCB", "97043", "9704361"):
            with pytest.raises(ValueError):
                registry.channel(bad)

    def test_configuration_from_environment(self, monkeypatch) -> None:
        monkeypatch.setenv("PAYOUT_BANKS_BASE_URL", "http://bank.test:9000")
        monkeypatch.setenv("PAYOUT_BANKS_ISO_BINS", '["970405", "970415"]')
        monkeypatch.setenv("PAYOUT_BANKS_WEBHOOK_SECRETS", '{"970436": "s"}')
        monkeypatch.setenv("PAYOUT_BANKS_READ_TIMEOUT_SECONDS", "2.5")
        settings = BankChannelSettings()
        assert settings.base_url == "http://bank.test:9000"
        assert settings.iso_bins == ["970405", "970415"]
        assert settings.webhook_secrets == {"970436": "s"}
        assert settings.timeout().read == 2.5

    async def test_development_secrets_refused_outside_development(self, client) -> None:
        with pytest.raises(ValueError):
            BankChannelSettings(
                environment="production", webhook_secrets={"970436": "dev-secret-970436"}
            )
        registry = BankChannelRegistry(
            BankChannelSettings(environment="production", webhook_secrets={"970436": "r" * 32}),
            client,
        )
        registry.channel("970436")
        with pytest.raises(LookupError):
            registry.channel("970418")

    @pytest.mark.parametrize(
        "secrets",
        [{}, {"970436": ""}, {"970436": "dev-secret-970436"}, {"970436": "s" * 31}],
        ids=["none", "empty", "development placeholder", "31 bytes"],
    )
    def test_payout_and_its_bank_channels_refuse_the_same_secrets_outside_development(
        self, secrets, tmp_path
    ) -> None:
        from pydantic import ValidationError

        from services.payout.settings import PayoutSettings

        with pytest.raises(ValidationError, match="webhook secret"):
            BankChannelSettings(environment="production", webhook_secrets=secrets)
        with pytest.raises(ValidationError, match="webhook secret"):
            PayoutSettings(
                environment="production",
                webhook_secrets=secrets,
                data_dir=tmp_path,
            )
        assert (
            BankChannelSettings(environment="development", webhook_secrets=secrets).webhook_secrets
            == secrets
        )

    def test_channels_built_from_payout_settings_keep_their_secrets(self, tmp_path) -> None:
        from services.payout.settings import PayoutSettings

        strong = {"970436": "r" * 32}
        settings = PayoutSettings(
            environment="production", webhook_secrets=strong, data_dir=tmp_path
        )
        assert settings.bank_channels().webhook_secrets == strong

    async def test_own_client_closed_with_the_registry(self) -> None:
        registry = BankChannelRegistry(BankChannelSettings())
        async with registry:
            pass
        assert registry.client.is_closed


class TestReasons:
    def test_permanent_and_transient_reasons(self) -> None:
        for code in (
            "AC01",
            "AC04",
            "AC06",
            "MD07",
            "NAME_MISMATCH",
            "NOT_FOUND",
            "REFUSED",
            "DECEASED",
        ):
            assert REASONS[code].permanent
        assert not is_permanent("AM04")
        _text, permanent, kind = REASONS["MD07"]
        assert (
            permanent
            and kind == "deceased"
            and "qua đời" in REASONS["MD07"].vi
            and "deceased" in REASONS["MD07"].en
        )

    def test_unknown_code_is_no_verdict_on_the_payment(self) -> None:
        assert not describe("ZZ99").permanent
        assert not describe(None).permanent
