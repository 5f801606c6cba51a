"""Payout's signed callbacks under attack, on PostgreSQL and Kafka with the bank sandbox: a bad
signature, a stale or future timestamp, no signature, a body signed with another bank's key or
for another counterparty, a tampered body, a replayed event id, and bodies correctly signed but
malformed, oversized or hostile. None is a server error; the refused ones change nothing in
payout (installments, callbacks seen, outbox, anomalies) nor at the bank (the sandbox's ledger)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from services.payout.adapters.orm import callback_events, installments, outbox, payment_anomalies
from shared.webhook_signing import dev_secret, signed_headers
from tests.fuzz.servers import service_settings
from tests.payout.harness import (
    AGRIBANK,
    BIDV,
    VCB,
    PayoutStack,
    accounts,
    intake_events,
    payout_settings,
    people,
    verified,
)
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database
from tests.support.sandbox import SandboxAdmin, SandboxProcess, free_port

SETTLED_PERIOD = "2031-04"
OPEN_PERIOD = "2031-05"
PROBLEM = "application/problem+json"
INJECTIONS = [
    "' OR '1'='1'; DROP TABLE installments;--",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/x}",
    "%s%n%x{0}",
    "\u202eRTL\u202c",
    "A" * 10_000,
]


class Scene:
    def __init__(
        self, stack: PayoutStack, sandbox: SandboxAdmin, settled: list[dict], open_: list[dict]
    ) -> None:
        self.stack = stack
        self.sandbox = sandbox
        self.settled = settled  # installments of SETTLED_PERIOD, settled through the sandbox
        self.open = open_  # installments of OPEN_PERIOD, scheduled and never sent

    async def snapshot(self) -> tuple:
        async with self.stack.runtime.session_factory() as session:
            rows = (
                await session.execute(
                    select(
                        installments.c.id,
                        installments.c.state,
                        installments.c.reason_code,
                        installments.c.settled_at,
                        installments.c.bank_reference,
                    ).order_by(installments.c.id)
                )
            ).all()
            seen = (
                await session.execute(select(func.count()).select_from(callback_events))
            ).scalar_one()
            events = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
            anomalies = (
                await session.execute(select(func.count()).select_from(payment_anomalies))
            ).scalar_one()
        return tuple(rows), seen, events, anomalies, await self.sandbox.ledger()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.stack.api_url, timeout=30) as client:
            return await client.post(path, content=body, headers=headers)


@pytest_asyncio.fixture(scope="module")
async def scene() -> AsyncIterator[Scene]:
    name, url = await create_database("security_webhooks")
    api_port = free_port()
    sandbox_process = SandboxProcess(
        callback_base=f"http://127.0.0.1:{api_port}",
        extra_args=["--webhook-delay-ms", "10", "--webhook-retry-base-ms", "50"],
    )
    sandbox_process.start()
    sandbox = SandboxAdmin(sandbox_process.url)
    stack: PayoutStack | None = None
    try:
        import tempfile
        from pathlib import Path

        data_dir = Path(tempfile.mkdtemp(prefix="security-webhooks-"))
        prefix = service_settings(
            "payout", database_url=None, kafka=None, data_dir=data_dir
        ).topic_prefix
        stack = PayoutStack(
            payout_settings(
                url, KAFKA_BOOTSTRAP, data_dir, api_port, sandbox_process.url, topic_prefix=prefix
            ),
            sandbox_process.url,
        )
        await stack.start(run_workers=True)
        persons = people(3, bank_bin=VCB) + people(2, bank_bin=AGRIBANK)
        await sandbox.seed_accounts(accounts(persons))
        await stack.feed([e for p in persons for e in intake_events(p, start_period="2031-01")])
        await verified(stack, persons)
        await stack.start_cycle(SETTLED_PERIOD)
        await stack.wait_complete(SETTLED_PERIOD)
        await sandbox.wait_callbacks_idle(timeout=20)
        stack.stop.set()  # no more submissions: the next period stays scheduled
        await stack.start_cycle(OPEN_PERIOD)
        async with stack.client() as api:
            settled = (await api.get("/v1/installments", params={"period": SETTLED_PERIOD})).json()[
                "items"
            ]
            open_ = (await api.get("/v1/installments", params={"period": OPEN_PERIOD})).json()[
                "items"
            ]
        assert {i["state"] for i in settled} == {"SETTLED"} and {i["state"] for i in open_} == {
            "SCHEDULED"
        }
        yield Scene(stack, sandbox, settled, open_)
    finally:
        if stack is not None:
            await stack.close()
        await sandbox.aclose()
        sandbox_process.stop()
        await drop_database(name)


def _json_delivery(delivery_id: str, events: list[dict]) -> bytes:
    return orjson.dumps({"delivery_id": delivery_id, "events": events})


def _event(event_id: str, e2e: str, amount: int, kind: str = "transfer.returned", **extra) -> dict:
    return {
        "event_id": event_id,
        "type": kind,
        "end_to_end_id": e2e,
        "amount": amount,
        "bank_reference": "FT-X",
        "reason_code": "AC04",
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **extra,
    }


def _camt(e2e: str, amount: int) -> bytes:
    return f"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>MSG-FORGED</MsgId></GrpHdr><Ntfctn><Ntry><NtryRef>EVT-ISO-FORGED</NtryRef>
<Amt Ccy="VND">{amount}</Amt><BookgDt><DtTm>2031-04-06T03:00:00Z</DtTm></BookgDt>
<BkTxCd><Prtry><Cd>RETURNED</Cd></Prtry></BkTxCd><NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>
<RtrInf><Rsn><Cd>AC04</Cd></Rsn></RtrInf></TxDtls></NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>""".encode()


class TestUntrustedCallbacks:
    async def test_unsigned_forged_stale_and_misaddressed_callbacks_are_refused_and_change_nothing(
        self, scene
    ):
        vcb = next(i for i in scene.settled if i["counterparty"] == VCB)
        iso = next(i for i in scene.settled if i["counterparty"] == AGRIBANK)
        body = _json_delivery(
            "DLV-ATTACK", [_event("EVT-ATTACK", vcb["end_to_end_id"], vcb["amount"])]
        )
        camt = _camt(iso["end_to_end_id"], iso["amount"])
        now = int(time.time())
        bank, iso_url = f"/v1/webhooks/banks/{VCB}", f"/v1/webhooks/iso/{AGRIBANK}"
        attempts = {
            "bad signature": (
                bank,
                body,
                signed_headers(VCB, "not-the-secret", body),
                "bad_signature",
            ),
            "stale timestamp": (
                bank,
                body,
                signed_headers(VCB, dev_secret(VCB), body, timestamp=now - 400),
                "stale_timestamp",
            ),
            "future timestamp": (
                bank,
                body,
                signed_headers(VCB, dev_secret(VCB), body, timestamp=now + 400),
                "stale_timestamp",
            ),
            "no signature": (bank, body, {}, "missing_signature"),
            "not a timestamp": (
                bank,
                body,
                {
                    **signed_headers(VCB, dev_secret(VCB), body),
                    "X-Signature-Timestamp": "yesterday",
                },
                "bad_signature",
            ),
            "another bank's key": (
                bank,
                body,
                {**signed_headers(BIDV, dev_secret(BIDV), body), "X-Counterparty": VCB},
                "bad_signature",
            ),
            "signed for another counterparty": (
                bank,
                body,
                signed_headers(BIDV, dev_secret(BIDV), body),
                "wrong_counterparty",
            ),
            "tampered body": (
                bank,
                body.replace(b"AC04", b"AC06"),
                signed_headers(VCB, dev_secret(VCB), body),
                "bad_signature",
            ),
            "camt.054 with a NAPAS bank's key": (
                iso_url,
                camt,
                {**signed_headers(VCB, dev_secret(VCB), camt), "X-Counterparty": AGRIBANK},
                "bad_signature",
            ),
            "post office with a bank's key": (
                "/v1/webhooks/vnpost",
                body,
                {**signed_headers(VCB, dev_secret(VCB), body), "X-Counterparty": "VNPOST"},
                "bad_signature",
            ),
        }
        before = await scene.snapshot()
        for name, (path, content, headers, reason) in attempts.items():
            response = await scene.post(path, content, headers)
            assert response.status_code == 401, (name, response.text)
            assert response.headers["content-type"].startswith(PROBLEM), name
            assert response.json()["reason"] == reason, (name, response.text)
        assert await scene.snapshot() == before

    async def test_a_replayed_event_id_changes_nothing(self, scene):
        item = next(i for i in scene.settled if i["counterparty"] == VCB)
        async with scene.stack.runtime.session_factory() as session:
            seen = (
                (
                    await session.execute(
                        select(callback_events.c.event_id)
                        .where(callback_events.c.end_to_end_id == item["end_to_end_id"])
                        .order_by(callback_events.c.received_at)
                    )
                )
                .scalars()
                .first()
            )
        before = await scene.snapshot()
        # The genuine event id, now claiming the money came back, in a new delivery, correctly signed.
        replay = _json_delivery("DLV-REPLAY", [_event(seen, item["end_to_end_id"], item["amount"])])
        response = await scene.post(
            f"/v1/webhooks/banks/{VCB}", replay, signed_headers(VCB, dev_secret(VCB), replay)
        )
        assert response.status_code == 200, response.text
        assert response.json()["replayed"] == 1 and response.json()["applied"] == 0
        assert await scene.snapshot() == before

    async def test_an_oversized_body_is_refused_before_its_signature_is_even_read(self, scene):
        body = (
            b'{"delivery_id":"DLV-BIG","events":[' + b'{"x":"' + b"A" * (9 * 1024 * 1024) + b'"}]}'
        )
        before = await scene.snapshot()
        for path in (
            f"/v1/webhooks/banks/{VCB}",
            f"/v1/webhooks/iso/{AGRIBANK}",
            "/v1/webhooks/vnpost",
        ):
            response = await scene.post(path, body, {})
            assert response.status_code == 413, (path, response.text[:300])
            assert response.headers["content-type"].startswith(PROBLEM)
        assert await scene.snapshot() == before

    async def test_a_callback_for_an_unknown_bank_is_not_found(self, scene):
        body = _json_delivery("DLV-UNKNOWN", [])
        before = await scene.snapshot()
        for path in (
            "/v1/webhooks/banks/000000",
            "/v1/webhooks/banks/%D9%A0%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5",
            "/v1/webhooks/banks/..%2F..%2Fadmin",
            f"/v1/webhooks/iso/{VCB}",
        ):
            response = await scene.post(path, body, signed_headers(VCB, dev_secret(VCB), body))
            assert response.status_code == 404, (path, response.text)
        assert await scene.snapshot() == before


def _refused_bodies(e2e: str, amount: int) -> dict[str, bytes]:
    """Correctly signed deliveries about a real, open payment that must be refused whole."""
    event = _event("EVT-HOSTILE", e2e, amount, kind="transfer.failed")
    bodies: dict[str, bytes] = {
        "not JSON": b"{not json",
        "a JSON array": b"[]",
        "deeply nested": b'{"delivery_id":"DLV-H","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "no events": orjson.dumps({"delivery_id": "DLV-H"}),
        "an event that is not an object": _json_delivery("DLV-H", ["x"]),  # type: ignore[list-item]
        "unknown type": _json_delivery("DLV-H", [{**event, "type": "transfer.stolen"}]),
        "type as an object": _json_delivery("DLV-H", [{**event, "type": {"a": 1}}]),
        "amount as text": _json_delivery("DLV-H", [{**event, "amount": "150000"}]),
        "amount as a float": _json_delivery("DLV-H", [{**event, "amount": 1.5}]),
        "amount past BIGINT": _json_delivery("DLV-H", [{**event, "amount": 2**63}]),
        "amount of 2^64-1": _json_delivery("DLV-H", [{**event, "amount": 2**64 - 1}]),
        "reason code as an object": _json_delivery(
            "DLV-H", [{**event, "reason_code": {"code": "AC04"}}]
        ),
        "reason code of 10,000 characters": _json_delivery(
            "DLV-H", [{**event, "reason_code": "R" * 10_000}]
        ),
        "bank reference of 10,000 characters": _json_delivery(
            "DLV-H", [{**event, "bank_reference": "B" * 10_000}]
        ),
        "bank reference as a number": _json_delivery("DLV-H", [{**event, "bank_reference": 12345}]),
        "NUL in the reason code": _json_delivery("DLV-H", [{**event, "reason_code": "AC\u000004"}]),
        "NUL in the event id": _json_delivery("DLV-H", [{**event, "event_id": "EVT\u0000X"}]),
        "NUL in the delivery id": _json_delivery("DLV\u0000H", [event]),
        "event id of 101 characters": _json_delivery("DLV-H", [{**event, "event_id": "E" * 101}]),
        "delivery id of 10,000 characters": _json_delivery("D" * 10_000, [event]),
        "time before year 1 in UTC": _json_delivery(
            "DLV-H", [{**event, "occurred_at": "0001-01-01T00:00:00+14:00"}]
        ),
        "time that is not a time": _json_delivery("DLV-H", [{**event, "occurred_at": "soon"}]),
        "oversized body (9 MB)": _json_delivery(
            "DLV-H",
            [{**event, "event_id": f"E{n}", "bank_reference": "B" * 60} for n in range(40_000)],
        ),
    }
    for n, text in enumerate(INJECTIONS):
        bodies[f"injection {n} in the reason code"] = _json_delivery(
            "DLV-H", [{**event, "reason_code": text}]
        )
    return bodies


def _flagged_bodies(amount: int) -> dict[str, tuple[bytes, str]]:
    """Correctly signed deliveries whose references name no payment of ours: taken, and only
    flagged for a person (the text stored as it came, at most 64 characters)."""
    bodies = {}
    for n, text in enumerate(INJECTIONS):
        e2e = text[:64] or "EMPTY"
        bodies[f"injection {n} in the end-to-end id"] = (
            _json_delivery("DLV-F", [_event(f"EVT-INJ-{n}", e2e, amount, kind="transfer.settled")]),
            e2e,
        )
        bodies[f"injection {n} in the delivery id"] = (
            _json_delivery(
                text[:100], [_event(f"EVT-DLV-{n}", f"PAY-9{n}-1", amount, kind="transfer.settled")]
            ),
            f"PAY-9{n}-1",
        )
    return bodies


class TestSignedButHostileBodies:
    async def test_malformed_and_hostile_deliveries_are_refused_and_change_nothing(self, scene):
        target = next(i for i in scene.open if i["counterparty"] == VCB)
        url = f"/v1/webhooks/banks/{VCB}"
        before = await scene.snapshot()
        for name, body in _refused_bodies(target["end_to_end_id"], target["amount"]).items():
            response = await scene.post(url, body, signed_headers(VCB, dev_secret(VCB), body))
            assert 400 <= response.status_code < 500, (
                name,
                response.status_code,
                response.text[:500],
            )
            assert response.headers["content-type"].startswith(PROBLEM), name
            if name.startswith("oversized"):
                assert response.status_code == 413
        assert await scene.snapshot() == before

    async def test_injection_in_references_is_stored_as_text_and_only_flagged(self, scene):
        url = f"/v1/webhooks/banks/{VCB}"
        for name, (body, e2e) in _flagged_bodies(1_500_000).items():
            before = await scene.snapshot()
            response = await scene.post(url, body, signed_headers(VCB, dev_secret(VCB), body))
            assert response.status_code == 200, (name, response.text[:500])
            assert response.json()["flagged"] == 1 and response.json()["applied"] == 0, name
            after = await scene.snapshot()
            assert (after[0], after[2], after[4]) == (before[0], before[2], before[4]), name
            assert after[3] == before[3] + 1, name
            async with scene.stack.runtime.session_factory() as session:
                kinds = (
                    (
                        await session.execute(
                            select(payment_anomalies.c.kind).where(
                                payment_anomalies.c.end_to_end_id == e2e
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
            assert "UNKNOWN_PAYMENT" in kinds, name

    @pytest.mark.parametrize(
        "body",
        [
            b"<Document",
            b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM "
            b"'file:///etc/passwd'>]><Document>&e;</Document>",
            b"<?xml version='1.0'?><!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b "
            b"'&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
            b"<Document>&c;</Document>",
        ],
    )
    async def test_correctly_signed_hostile_xml_is_refused(self, scene, body):
        before = await scene.snapshot()
        response = await scene.post(
            f"/v1/webhooks/iso/{AGRIBANK}",
            body,
            signed_headers(AGRIBANK, dev_secret(AGRIBANK), body),
        )
        assert response.status_code == 400, response.text
        assert b"root:" not in response.content
        assert await scene.snapshot() == before
