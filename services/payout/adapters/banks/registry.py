"""Builds the channel for a counterparty from configuration.

Every 6-digit BIN is a NAPAS-style bank unless configured otherwise (`iso_bins`, or
`channel_styles` BIN -> "napas" | "iso20022"); `VNPOST` is the post office. All channels share
one pooled `httpx.AsyncClient`, built here and closed by `aclose()`.
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.banks import find_bank
from shared.settings import DEVELOPMENT, secret_problem
from shared.webhook_signing import DEV_SECRET_PREFIX, secret_for

from ._http import CounterpartyHttp
from .base import VNPOST, BankChannel
from .directory import is_bin
from .iso20022 import Debtor, Iso20022Channel
from .napas import NapasChannel
from .vnpost import VnpostChannel

Style = Literal["napas", "iso20022", "vnpost"]


def webhook_secrets_problem(environment: str, secrets: dict[str, str]) -> str | None:
    """Why these webhook secrets may not be used in `environment`, or None (never quoting one).
    The one rule for them, wherever they are configured: outside development it fails closed,
    so none at all, an empty one, a development placeholder or a short one is refused."""
    if environment == DEVELOPMENT:
        return None
    if not secrets:
        return f"no webhook secret is configured; in {environment} every counterparty needs its own"
    for counterparty, secret in secrets.items():
        if not secret or secret.startswith(DEV_SECRET_PREFIX):
            return f"the webhook secret for {counterparty} is a development placeholder"
        problem = secret_problem(secret, f"the webhook secret for {counterparty}")
        if problem:
            return problem
    return None


class BankChannelSettings(BaseSettings):
    """Environment variables `PAYOUT_BANKS_*`; maps and lists are given as JSON."""

    model_config = SettingsConfigDict(
        env_prefix="PAYOUT_BANKS_", extra="ignore", hide_input_in_errors=True
    )

    environment: str = "production"  # development only when asked for
    base_url: str = "http://127.0.0.1:8010"
    base_urls: dict[str, str] = Field(default_factory=dict)  # counterparty -> URL override
    iso_bins: list[str] = Field(default_factory=lambda: ["970405"])
    channel_styles: dict[str, Literal["napas", "iso20022"]] = Field(default_factory=dict)
    webhook_secrets: dict[str, str] = Field(default_factory=dict)
    webhook_tolerance_seconds: int = 300
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 15.0
    write_timeout_seconds: float = 15.0
    pool_timeout_seconds: float = 5.0
    max_connections: int = 50
    max_keepalive_connections: int = 20
    debtor_name: str = "Bảo hiểm xã hội tỉnh Vĩnh Phúc"
    debtor_account: str = "0000000000000"
    debtor_accounts: dict[str, str] = Field(default_factory=dict)  # BIN -> paying account there
    initiating_party_id: str | None = None
    cash_list_concurrency: int = 4

    @model_validator(mode="after")
    def _refuse_unusable_secrets_outside_development(self) -> BankChannelSettings:
        problem = webhook_secrets_problem(self.environment, self.webhook_secrets)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def allow_dev_secrets(self) -> bool:
        return self.environment == DEVELOPMENT

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_seconds,
            read=self.read_timeout_seconds,
            write=self.write_timeout_seconds,
            pool=self.pool_timeout_seconds,
        )


class BankChannelRegistry:
    """`channel(counterparty)` gives the (cached) channel for a BIN or VNPOST."""

    def __init__(
        self,
        settings: BankChannelSettings | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings or BankChannelSettings()
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=self.settings.timeout(),
            limits=httpx.Limits(
                max_connections=self.settings.max_connections,
                max_keepalive_connections=self.settings.max_keepalive_connections,
            ),
        )
        self._channels: dict[str, BankChannel] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    def style_of(self, counterparty: str) -> Style:
        if counterparty == VNPOST:
            return "vnpost"
        if not is_bin(counterparty):
            raise ValueError("a counterparty is a 6-digit BIN or VNPOST")
        configured = self.settings.channel_styles.get(counterparty)
        if configured is not None:
            return configured
        return "iso20022" if counterparty in self.settings.iso_bins else "napas"

    def knows(self, counterparty: str) -> bool:
        """The post office, a bank of the directory, or a BIN the configuration names: what a
        caller may ask about (any other BIN is refused before a channel is built for it)."""
        if counterparty == VNPOST:
            return True
        settings = self.settings
        return is_bin(counterparty) and (
            find_bank(counterparty) is not None
            or counterparty in settings.base_urls
            or counterparty in settings.channel_styles
            or counterparty in settings.iso_bins
            or counterparty in settings.webhook_secrets
        )

    def secret(self, counterparty: str) -> str:
        return secret_for(
            counterparty,
            self.settings.webhook_secrets,
            allow_dev_default=self.settings.allow_dev_secrets,
        )

    def channel(self, counterparty: str) -> BankChannel:
        existing = self._channels.get(counterparty)
        if existing is not None:
            return existing
        channel = self._build(counterparty)
        self._channels[counterparty] = channel
        return channel

    def _build(self, counterparty: str) -> BankChannel:
        style = self.style_of(counterparty)
        settings = self.settings
        http = CounterpartyHttp(
            self._client,
            settings.base_urls.get(counterparty, settings.base_url),
            counterparty,
            settings.timeout(),
        )
        secret = self.secret(counterparty)
        tolerance = settings.webhook_tolerance_seconds
        if style == "vnpost":
            return VnpostChannel(http, secret, tolerance, settings.cash_list_concurrency)
        if style == "iso20022":
            debtor = Debtor(
                name=settings.debtor_name,
                account_number=settings.debtor_accounts.get(counterparty, settings.debtor_account),
                initiating_party_id=settings.initiating_party_id,
            )
            return Iso20022Channel(counterparty, http, secret, debtor, tolerance)
        return NapasChannel(counterparty, http, secret, tolerance)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> BankChannelRegistry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
