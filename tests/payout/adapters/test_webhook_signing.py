"""Signed callbacks: the shared helpers and every channel's `parse_callback`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from services.payout.adapters.banks import (
    BankChannelRegistry,
    BankChannelSettings,
    CallbackRejected,
)
from shared.webhook_signing import (
    SignatureError,
    dev_secret,
    parse_secrets,
    secret_for,
    sign,
    signed_headers,
    verify,
)
from tests.payout.adapters.adapter_helpers import AGRIBANK, BIDV, VCB, VCB_SECRET

NOW = datetime(2023, 5, 5, 3, 0, tzinfo=UTC)
BODY = orjson.dumps(
    {
        "delivery_id": "DLV1",
        "events": [
            {
                "event_id": "FT1-S",
                "type": "transfer.settled",
                "end_to_end_id": "E1",
                "amount": 2_500_000,
                "bank_reference": "FT1",
                "reason_code": None,
                "occurred_at": "2023-05-05T02:59:58.120Z",
            },
            {
                "event_id": "FT2-F",
                "type": "transfer.failed",
                "end_to_end_id": "E2",
                "amount": 1_800_000,
                "bank_reference": "FT2",
                "reason_code": "AC04",
                "occurred_at": "2023-05-05T02:59:59Z",
            },
        ],
    }
)


def at(moment: datetime) -> int:
    return int(moment.timestamp())


class TestSignAndVerify:
    def test_signature_is_v1_hmac_sha256_over_timestamp_dot_body(self) -> None:
        import hashlib
        import hmac

        expected = hmac.new(b"s", b"1683255600." + BODY, hashlib.sha256).hexdigest()
        assert sign("s", 1683255600, BODY) == f"v1={expected}"

    def test_good_signature_accepted(self) -> None:
        verify("s", signed_headers(VCB, "s", BODY, at(NOW)), BODY, NOW)

    def test_lower_case_header_names_accepted(self) -> None:
        headers = {k.lower(): v for k, v in signed_headers(VCB, "s", BODY, at(NOW)).items()}
        verify("s", headers, BODY, at(NOW))

    def test_tampered_body_is_bad_signature(self) -> None:
        headers = signed_headers(VCB, "s", BODY, at(NOW))
        with pytest.raises(SignatureError) as caught:
            verify("s", headers, BODY.replace(b"2500000", b"25000000"), NOW)
        assert caught.value.reason == "bad_signature"

    def test_other_secret_is_bad_signature(self) -> None:
        headers = signed_headers(VCB, "other", BODY, at(NOW))
        with pytest.raises(SignatureError) as caught:
            verify("s", headers, BODY, NOW)
        assert caught.value.reason == "bad_signature"

    @pytest.mark.parametrize("drift", [timedelta(minutes=-6), timedelta(minutes=6)])
    def test_timestamp_beyond_five_minutes_is_stale(self, drift: timedelta) -> None:
        headers = signed_headers(VCB, "s", BODY, at(NOW + drift))
        with pytest.raises(SignatureError) as caught:
            verify("s", headers, BODY, NOW)
        assert caught.value.reason == "stale_timestamp"

    def test_timestamp_within_tolerance_accepted(self) -> None:
        verify("s", signed_headers(VCB, "s", BODY, at(NOW - timedelta(minutes=4))), BODY, NOW)

    @pytest.mark.parametrize("missing", ["X-Signature", "X-Signature-Timestamp"])
    def test_missing_header_is_missing_signature(self, missing: str) -> None:
        headers = signed_headers(VCB, "s", BODY, at(NOW))
        del headers[missing]
        with pytest.raises(SignatureError) as caught:
            verify("s", headers, BODY, NOW)
        assert caught.value.reason == "missing_signature"

    def test_any_of_several_signatures_may_match_during_rotation(self) -> None:
        headers = signed_headers(VCB, "new", BODY, at(NOW))
        headers["X-Signature"] = f"{sign('old', at(NOW), BODY)},{headers['X-Signature']}"
        verify("new", headers, BODY, NOW)

    def test_secrets_default_to_development_value(self) -> None:
        assert secret_for(BIDV, {VCB: "x"}) == dev_secret(BIDV) == f"dev-secret-{BIDV}"
        assert secret_for(VCB, parse_secrets('{"970436": "x"}')) == "x"
        with pytest.raises(LookupError):
            secret_for(BIDV, {}, allow_dev_default=False)


@pytest.fixture
async def registry():
    settings = BankChannelSettings(webhook_secrets={VCB: VCB_SECRET}, iso_bins=[AGRIBANK])
    async with httpx.AsyncClient() as client:
        yield BankChannelRegistry(settings, client)


class TestParseCallback:
    def test_signed_callback_parsed_into_outcomes(self, registry) -> None:
        headers = signed_headers(VCB, VCB_SECRET, BODY, at(NOW))
        delivery_id, outcomes = registry.channel(VCB).parse_callback(headers, BODY, NOW)
        assert delivery_id == "DLV1"
        settled, failed = outcomes
        assert (settled.status, settled.amount, settled.event_id) == ("SETTLED", 2_500_000, "FT1-S")
        assert settled.occurred_at == datetime(2023, 5, 5, 2, 59, 58, 120000, tzinfo=UTC)
        assert (failed.status, failed.reason_code) == ("FAILED", "AC04")

    def test_signed_with_another_banks_secret_rejected(self, registry) -> None:
        headers = signed_headers(VCB, dev_secret(BIDV), BODY, at(NOW))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(VCB).parse_callback(headers, BODY, NOW)
        assert caught.value.reason == "bad_signature"

    def test_callback_for_another_bank_rejected(self, registry) -> None:
        headers = signed_headers(BIDV, dev_secret(BIDV), BODY, at(NOW))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(VCB).parse_callback(headers, BODY, NOW)
        assert caught.value.reason == "wrong_counterparty"

    def test_stale_callback_rejected(self, registry) -> None:
        headers = signed_headers(VCB, VCB_SECRET, BODY, at(NOW - timedelta(minutes=10)))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(VCB).parse_callback(headers, BODY, NOW)
        assert caught.value.reason == "stale_timestamp"

    def test_unsigned_callback_rejected(self, registry) -> None:
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(VCB).parse_callback({"X-Counterparty": VCB}, BODY, NOW)
        assert caught.value.reason == "missing_signature"

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[]",
            b'{"events": []}',
            b'{"delivery_id": "D", "events": [{"type": "transfer.settled"}]}',
            b'{"delivery_id": "D", "events": [{"event_id": "e", "type": "transfer.settled",'
            b' "end_to_end_id": "E", "amount": 1.5, "occurred_at": "2023-05-05T00:00:00Z"}]}',
            b'{"delivery_id": "D", "events": [{"event_id": "e", "type": "transfer.lost",'
            b' "end_to_end_id": "E", "amount": 1, "occurred_at": "2023-05-05T00:00:00Z"}]}',
        ],
    )
    def test_signed_but_malformed_body_rejected(self, registry, body: bytes) -> None:
        headers = signed_headers(VCB, VCB_SECRET, body, at(NOW))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(VCB).parse_callback(headers, body, NOW)
        assert caught.value.reason == "malformed_body"

    def test_post_office_confirmation_signed_for_a_bank_rejected(self, registry) -> None:
        headers = signed_headers(VCB, VCB_SECRET, BODY, at(NOW))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel("VNPOST").parse_callback(headers, BODY, NOW)
        assert caught.value.reason == "wrong_counterparty"

    def test_iso_notification_with_wrong_secret_rejected(self, registry) -> None:
        body = b"<Document/>"
        headers = signed_headers(AGRIBANK, "guess", body, at(NOW))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(AGRIBANK).parse_callback(headers, body, NOW)
        assert caught.value.reason == "bad_signature"

    def test_iso_body_that_is_not_camt054_is_malformed(self, registry) -> None:
        body = b"<Document><Other/></Document>"
        headers = signed_headers(AGRIBANK, dev_secret(AGRIBANK), body, at(NOW))
        with pytest.raises(CallbackRejected) as caught:
            registry.channel(AGRIBANK).parse_callback(headers, body, NOW)
        assert caught.value.reason == "malformed_body"
