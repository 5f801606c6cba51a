"""Funds envelopes in reporting: payout's cycle topic (EnvelopeSet, CycleApproved) projected per
period, agency and scheme beside the payments already counted, on SQLite and PostgreSQL; the
envelope-use API; dead letters for events that can never apply; the rebuild on Kafka."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.reporting.consumers.projections import projection_runner, read_control
from services.reporting.consumers.rebuild import rebuild
from services.reporting.domain.envelopes import (
    Approved,
    ApprovedTotal,
    EnvelopeKey,
    EnvelopeSetEvent,
    EnvelopeUse,
    envelope_use,
    latest_envelopes,
    summarise,
)
from services.reporting.service_layer.projector import Batch, apply_batch
from shared.events.envelope import EVENT_TYPE_HEADER, CloudEvent
from shared.messaging.ports import OutgoingRecord
from tests.reporting.support import events as ev
from tests.reporting.support.events import BASE, as_received, record
from tests.reporting.support.fake_store import FakeStore
from tests.reporting.support.harness import open_reporting, settings_for
from tests.support import tokens

KEY = EnvelopeKey("2023-05", "BHXH", "PENSION")
MILLION = 1_000_000


def line(approval: str, amount: int, count: int = 10, minutes: int = 0, envelope=None):
    return ApprovedTotal(approval, KEY, count, amount, envelope, BASE + timedelta(minutes=minutes))


# --- the rules, pure ----------------------------------------------------------------------------


class TestTheEnvelopeRules:
    def test_the_newest_envelope_stands_whatever_the_order(self):
        old = EnvelopeSetEvent(KEY, 100 * MILLION, BASE)
        new = EnvelopeSetEvent(KEY, 80 * MILLION, BASE + timedelta(hours=1))
        assert latest_envelopes([old, new])[KEY] == new
        assert latest_envelopes([new, old])[KEY] == new

    def test_an_approval_counts_once_however_often_it_arrives(self):
        summed = summarise([line("a1", 40 * MILLION), line("a1", 40 * MILLION), line("a2", 5)])
        assert summed[KEY] == Approved(40 * MILLION + 5, 20, 2, None)

    def test_the_envelope_of_the_newest_approval_is_kept(self):
        summed = summarise(
            [line("a2", 1, minutes=5, envelope=90), line("a1", 1, minutes=1, envelope=70)]
        )
        assert summed[KEY].envelope == 90

    def test_remaining_and_shares_are_exact_and_over_is_said(self):
        use = EnvelopeUse(KEY, 100 * MILLION, 25 * MILLION, 10, 1, 10 * MILLION, 10)
        d = use.as_dict()
        assert (d["remaining"], d["over"], d["percent_used"], d["percent_paid"]) == (
            75 * MILLION,
            False,
            25.0,
            10.0,
        )
        over = EnvelopeUse(KEY, 3, 4, 10, 1, 0, 0).as_dict()
        assert (over["remaining"], over["over"], over["percent_used"]) == (-1, True, 133.33)

    def test_without_an_envelope_nothing_is_remaining_and_nothing_is_over(self):
        d = EnvelopeUse(KEY, None, 5 * MILLION, 10, 1, 0, 0).as_dict()
        assert (d["envelope"], d["remaining"], d["over"], d["percent_used"]) == (
            None,
            None,
            False,
            None,
        )

    def test_a_line_about_few_people_shows_only_its_envelope_to_a_public_reader(self):
        small = EnvelopeUse(KEY, 100, 50, 2, 1, 50, 2)
        hidden = small.as_dict(hide_small=True)
        assert hidden["suppressed"] is True and hidden["envelope"] == 100
        assert all(hidden[k] is None for k in ("approved", "paid", "remaining", "percent_used"))
        assert small.as_dict()["approved"] == 50  # the detail reader sees it
        big = EnvelopeUse(KEY, 100, 50, 5, 1, 50, 5)
        assert big.as_dict(hide_small=True)["approved"] == 50

    def test_a_line_per_key_with_an_envelope_or_an_approval_only(self):
        other = EnvelopeKey("2023-05", "DOLISA", "MERITORIOUS")
        paid_only = EnvelopeKey("2023-05", "ESC", "UNEMPLOYMENT")
        lines = envelope_use(
            {KEY: 10},
            {other: Approved(5, 1, 1, 7)},
            {KEY: (3, 1), paid_only: (9, 9)},
        )
        assert [(u.key, u.envelope, u.approved, u.paid) for u in lines] == [
            (KEY, 10, 0, 3),
            (other, 7, 5, 0),  # no EnvelopeSet seen: the approval's envelope
        ]


class TestTheProjector:
    def test_envelopes_and_approvals_reach_the_store_once(self):
        store = FakeStore()
        batch = Batch(1)
        batch.envelopes += [
            EnvelopeSetEvent(KEY, 9, BASE + timedelta(hours=1)),
            EnvelopeSetEvent(KEY, 5, BASE),
        ]
        batch.approvals += [line("a1", 3), line("a1", 3)]
        apply_batch(store, batch)
        older = Batch(1)
        older.envelopes.append(EnvelopeSetEvent(KEY, 1, BASE - timedelta(days=1)))
        apply_batch(store, older)
        assert store.envelopes[KEY].amount == 9
        assert list(store.approvals) == [("a1", "PENSION")]


# --- the projection on both databases --------------------------------------------------------


@pytest.fixture(params=["postgres", "embedded"])
async def stack(request, tmp_path, reporting_database):
    url = await reporting_database("repe") if request.param == "postgres" else None
    async with open_reporting(settings_for(tmp_path, url)) as reporting:
        yield reporting


def history() -> list:
    """May 2023: BHXH's pension envelope loaded, lowered, approved in two parts, partly paid (one
    in cash); DOLISA approved without an envelope event; a pension of another period; a cycle
    opening that means nothing to reporting."""
    paid = [ev.settled(ev.facts(f"i-{n}", f"b-{n}", "2023-05", 4 * MILLION)) for n in range(5)] + [
        ev.paid_cash(ev.facts("i-cash", "b-cash", "2023-05", 3 * MILLION)),
        ev.scheduled(ev.facts("i-wait", "b-wait", "2023-05", 7 * MILLION)),
        ev.settled(ev.facts("i-june", "b-june", "2023-06", 2 * MILLION)),
    ]
    return [
        ev.cycle_opened("2023-05"),
        ev.envelope_set("2023-05", "BHXH", "PENSION", 40 * MILLION, BASE),
        ev.envelope_set("2023-05", "BHXH", "PENSION", 36 * MILLION, BASE + timedelta(hours=2)),
        ev.envelope_set("2023-05", "BHXH", "SI_ALLOWANCE", 10 * MILLION, BASE),
        ev.cycle_approved(
            "2023-05",
            "BHXH",
            "a-1",
            {"PENSION": (6, 23 * MILLION)},
            BASE + timedelta(hours=3),
            envelopes={"PENSION": 36 * MILLION},
        ),
        ev.cycle_approved(
            "2023-05", "BHXH", "a-2", {"PENSION": (1, 7 * MILLION)}, BASE + timedelta(hours=5)
        ),
        ev.cycle_approved(
            "2023-05",
            "DOLISA",
            "a-3",
            {"MERITORIOUS": (8, 20 * MILLION)},
            BASE + timedelta(hours=4),
            envelopes={"MERITORIOUS": 25 * MILLION},
        ),
        *paid,
    ]


def by_key(body: dict) -> dict[tuple[str, str], dict]:
    return {(r["agency"], r["scheme"]): r for r in body["rows"]}


class TestTheProjection:
    async def test_envelope_approved_paid_remaining_and_share_per_agency_and_scheme(self, stack):
        await stack.feed(history())
        body = await stack.get("/v1/envelopes", period="2023-05")
        assert body["period"] == "2023-05" and body["periods"] == ["2023-05"]
        rows = by_key(body)
        assert sorted(rows) == [
            ("BHXH", "PENSION"),
            ("BHXH", "SI_ALLOWANCE"),
            ("DOLISA", "MERITORIOUS"),
        ]
        pension = rows[("BHXH", "PENSION")]
        assert {k: pension[k] for k in ("envelope", "approved", "approved_count", "approvals")} == {
            "envelope": 36 * MILLION,  # the later of the two
            "approved": 30 * MILLION,
            "approved_count": 7,
            "approvals": 2,
        }
        assert pension["paid"] == 5 * 4 * MILLION + 3 * MILLION  # settled and cash, not scheduled
        assert (pension["remaining"], pension["over"]) == (6 * MILLION, False)
        assert (pension["percent_used"], pension["percent_paid"]) == (83.33, 63.89)
        assert pension["agency_name_vi"] == "Bảo hiểm xã hội tỉnh"
        assert pension["scheme_name_en"] == "Pension"
        allowance = rows[("BHXH", "SI_ALLOWANCE")]
        assert (allowance["approved"], allowance["paid"], allowance["remaining"]) == (
            0,
            0,
            10 * MILLION,
        )
        meritorious = rows[("DOLISA", "MERITORIOUS")]
        assert (meritorious["envelope"], meritorious["remaining"]) == (25 * MILLION, 5 * MILLION)

    async def test_the_same_events_twice_change_nothing(self, stack):
        payloads = history()
        records = [record(p) for p in payloads]
        await stack.feed(records)
        models = await stack.read_models()
        body = await stack.get("/v1/envelopes", period="2023-05")
        await stack.feed(records)  # redelivered: same event ids
        await stack.feed(payloads)  # re-published: same facts, new event ids
        assert await stack.read_models() == models
        assert await stack.get("/v1/envelopes", period="2023-05") == body

    async def test_an_older_envelope_arriving_late_changes_nothing(self, stack):
        await stack.feed(history())
        before = by_key(await stack.get("/v1/envelopes", period="2023-05"))
        await stack.feed([ev.envelope_set("2023-05", "BHXH", "PENSION", MILLION, BASE)])
        after = by_key(await stack.get("/v1/envelopes", period="2023-05"))
        assert after == before
        await stack.feed(
            [ev.envelope_set("2023-05", "BHXH", "PENSION", 20 * MILLION, BASE + timedelta(days=1))]
        )
        pension = by_key(await stack.get("/v1/envelopes", period="2023-05"))[("BHXH", "PENSION")]
        assert (pension["envelope"], pension["remaining"], pension["over"]) == (
            20 * MILLION,
            -10 * MILLION,
            True,
        )

    async def test_an_event_that_can_never_apply_is_dead_lettered_and_the_rest_applied(self, stack):
        good = ev.cycle_approved("2023-05", "BHXH", "a-9", {"PENSION": (1, 5 * MILLION)})
        _, key, event = ev.cloud_event(good)
        data = dict(event.data)
        data["totals"] = [{"scheme": "PENSION", "count": 1, "amount": -5}]  # negative money
        bad = CloudEvent(
            type=event.type, source=event.source, subject=key, data=data, id="bad-approval"
        )
        poison = OutgoingRecord(
            "payout.cycle.v1",
            key.encode(),
            bad.to_json(),
            ((EVENT_TYPE_HEADER, bad.type.encode()),),
        )
        later = ev.envelope_set("2023-05", "BHXH", "PENSION", 9 * MILLION)
        runner = projection_runner(stack.runtime, (await read_control(stack.runtime)).generation)
        dlq = stack.runtime.bus.producer()
        await dlq.start()
        try:
            await runner.process(
                as_received([poison, record(ev.cycle_opened("2023-05")), record(later)]), dlq
            )
        finally:
            await dlq.stop()
        assert runner.dead_lettered_total == 1  # the opening is skipped, not dead-lettered
        rows = by_key(await stack.get("/v1/envelopes", period="2023-05"))
        assert rows[("BHXH", "PENSION")]["envelope"] == 9 * MILLION
        assert rows[("BHXH", "PENSION")]["approved"] == 0


# --- the API ------------------------------------------------------------------------------------


class TestTheApi:
    async def test_the_default_period_is_the_latest_with_envelopes(self, reporting_pg):
        await reporting_pg.feed(
            [
                *history(),
                ev.envelope_set("2023-07", "ESC", "OVERSEAS_LABOUR", 150 * MILLION),
            ]
        )
        body = await reporting_pg.get("/v1/envelopes")
        assert (body["period"], body["periods"]) == ("2023-07", ["2023-05", "2023-07"])
        assert [(r["agency"], r["approved"], r["percent_used"]) for r in body["rows"]] == [
            ("ESC", 0, 0.0)
        ]
        assert (await reporting_pg.get("/v1/envelopes", period="2023-06"))["rows"] == []

    async def test_nothing_yet_is_an_empty_answer(self, reporting_pg):
        assert await reporting_pg.get("/v1/envelopes") == {
            "period": None,
            "periods": [],
            "suppressed_below": None,
            "rows": [],
        }

    @pytest.mark.parametrize("period", ["2023-13", "May 2023", "2023-5"])
    async def test_a_malformed_period_is_a_problem_not_an_error(self, reporting_pg, period):
        response = await reporting_pg.client.get("/v1/envelopes", params={"period": period})
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 422

    async def test_a_public_reader_sees_small_lines_as_envelopes_only(self, reporting_pg):
        await reporting_pg.feed(
            [
                *history(),
                ev.envelope_set("2023-05", "ESC", "OVERSEAS_LABOUR", 50 * MILLION),
                ev.cycle_approved(
                    "2023-05", "ESC", "a-esc", {"OVERSEAS_LABOUR": (2, 24 * MILLION)}
                ),
            ]
        )
        public = (
            await reporting_pg.public.get("/v1/envelopes", params={"period": "2023-05"})
        ).json()
        assert public["suppressed_below"] == 5
        rows = by_key(public)
        small = rows[("ESC", "OVERSEAS_LABOUR")]
        assert small["suppressed"] and small["envelope"] == 50 * MILLION
        assert small["approved"] is None and small["remaining"] is None
        assert "24000000" not in str(public)
        assert rows[("BHXH", "PENSION")]["approved"] == 30 * MILLION  # 7 installments: shown
        detail = by_key(await reporting_pg.get("/v1/envelopes", period="2023-05"))
        assert detail[("ESC", "OVERSEAS_LABOUR")]["approved"] == 24 * MILLION

    async def test_a_token_with_reports_read_is_needed_when_reads_are_closed(
        self, tmp_path, reporting_database
    ):
        settings = settings_for(tmp_path, await reporting_database("repea"), require_auth=True)
        async with open_reporting(settings) as closed:
            assert (await closed.public.get("/v1/envelopes")).status_code == 401
            wrong = {"Authorization": f"Bearer {tokens.token(['reports:write'], sub='t')}"}
            assert (await closed.public.get("/v1/envelopes", headers=wrong)).status_code == 403
            right = {"Authorization": f"Bearer {tokens.token(['reports:read'], sub='t')}"}
            assert (await closed.public.get("/v1/envelopes", headers=right)).status_code == 200


# --- the rebuild --------------------------------------------------------------------------------


class TestTheRebuild:
    async def test_a_rebuild_gives_the_same_envelope_use(self, reporting_kafka):
        reporting_kafka.start_worker()
        await reporting_kafka.publish(history())
        await reporting_kafka.wait_caught_up()
        models = await reporting_kafka.read_models()
        body = await reporting_kafka.get("/v1/envelopes", period="2023-05")
        assert models["envelope_budgets"] and models["envelope_approvals"]
        assert len(body["rows"]) == 3

        result = await rebuild(reporting_kafka.runtime, timeout=120)

        assert result.generation == 2
        assert await reporting_kafka.read_models() == models
        assert await reporting_kafka.get("/v1/envelopes", period="2023-05") == body
