"""The rules of approving a prepared cycle, as pure functions: four eyes, the agency, the cycle
prepared, the digest of exactly what awaits, and the funds envelope."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from itertools import pairwise
from typing import ClassVar

import pytest

from services.payout.domain import approval as rules
from services.payout.domain.approval import (
    ApprovalRefused,
    Item,
    Total,
    awaiting,
    check_approver,
    check_digest,
    check_envelopes,
    check_prepared,
    check_reason,
    envelope_excesses,
)
from shared.auth import Principal
from shared.authority import scopes_of_roles

ITEMS = [
    Item(1, 500_000, "SOCIAL_PROTECTION", "OWN_ACCOUNT", "970436", "M1"),
    Item(2, 750_000, "SOCIAL_PROTECTION", "CASH_POST_OFFICE", "VNPOST", "M2"),
    Item(3, 2_000_000, "MERITORIOUS", "OWN_ACCOUNT", "970418", "M3"),
]


def person(sub: str, *roles: str, agency: str | None = "DOLISA") -> Principal:
    return Principal(
        sub,
        scopes_of_roles(set(roles)),
        kind="person",
        roles=frozenset(roles),
        agency_claim=agency,
    )


def refused(call, *args, **kwargs) -> ApprovalRefused:
    with pytest.raises(ApprovalRefused) as caught:
        call(*args, **kwargs)
    return caught.value


class TestFourEyes:
    def test_a_checker_of_the_agency_who_prepared_nothing_may_approve(self):
        check_approver(person("lan", "checker"), "DOLISA", ["minh"])

    def test_the_preparer_may_not_approve_even_holding_both_roles(self):
        error = refused(check_approver, person("minh", "maker", "checker"), "DOLISA", ["minh"])
        assert (error.status, error.kind) == (403, "four-eyes")

    def test_a_checker_of_another_agency_is_refused(self):
        error = refused(check_approver, person("hoa", "checker", agency="BHXH"), "DOLISA", ["minh"])
        assert (error.status, error.kind) == (403, "other-agency")

    def test_a_client_is_refused_whatever_its_scopes(self):
        client = Principal("ops", frozenset({"cycles:approve", "agency:DOLISA"}))
        error = refused(check_approver, client, "DOLISA", ["minh"])
        assert (error.status, error.kind) == (403, "approver-not-a-person")

    def test_a_maker_without_the_approve_scope_is_refused(self):
        error = refused(check_approver, person("tuan", "maker"), "DOLISA", ["minh"])
        assert (error.status, error.kind) == (403, "insufficient-scope")


class TestPrepared:
    def test_waits_for_creation_and_revalidation_and_says_so(self):
        error = refused(check_prepared, creation_finished=False, revalidated=False, count=3)
        assert (error.status, error.kind) == (409, "cycle-not-prepared")
        assert "creation" in error.detail and "revalidation" in error.detail

    def test_nothing_awaiting_is_refused(self):
        error = refused(check_prepared, creation_finished=True, revalidated=True, count=0)
        assert error.kind == "cycle-not-prepared"

    def test_prepared(self):
        check_prepared(creation_finished=True, revalidated=True, count=1)

    def test_a_rejection_needs_a_reason(self):
        assert refused(check_reason, "REJECT", "  ").kind == "reason-required"
        check_reason("REJECT", "amounts of commune 09154 to check")
        check_reason("APPROVE", None)


class TestDigest:
    def test_items_out_of_the_digests_order_are_refused_not_sorted(self):
        # The order is the repository's ORDER BY; a reader that broke it is a bug, not a sort.
        with pytest.raises(ValueError, match="came after"):
            awaiting("2031-03", "DOLISA", list(reversed(ITEMS)))

    def test_a_one_shot_stream_is_folded_in_bounded_memory(self):
        def stream(n):
            for k in range(1, n + 1):
                yield Item(k, 500_000 + k, "SOCIAL_PROTECTION", "OWN_ACCOUNT", "970436", f"M{k}")

        tracemalloc.start()
        try:
            shown = awaiting("2031-03", "DOLISA", stream(200_000))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (shown.count, shown.amount) == (200_000, 200_000 * 500_000 + 200_000 * 200_001 // 2)
        # A sorted list of them all and one JSON of it took 74 MB.
        assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB"

    def test_its_canonical_form(self):
        plain = json.dumps(
            [[i.installment_id, i.amount, i.counterparty, i.method_id] for i in ITEMS],
            sort_keys=True,
            separators=(",", ":"),
        )
        header = {
            "period": "2031-03",
            "agency": "DOLISA",
            "count": 3,
            "amount": 3_250_000,
            "by_scheme": {"MERITORIOUS": [1, 2_000_000], "SOCIAL_PROTECTION": [2, 1_250_000]},
            "by_channel": {"CASH_POST_OFFICE": [1, 750_000], "OWN_ACCOUNT": [2, 2_500_000]},
            "by_counterparty": {
                "970418": [1, 2_000_000],
                "970436": [1, 500_000],
                "VNPOST": [1, 750_000],
            },
            "items": hashlib.sha256(plain.encode()).hexdigest(),
        }
        expected = hashlib.sha256(
            json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        assert awaiting("2031-03", "DOLISA", iter(ITEMS)).digest == expected

    def test_the_same_whatever_the_chunks_it_is_fed_in(self):
        many = [
            Item(k, 1_000 + k, "PENSION", "OWN_ACCOUNT", ("970436", "970418")[k % 2], f"M{k}")
            for k in range(1, 2_501)
        ]
        bounds = [0, 1, 7, 1_007, 2_499, 2_500]
        tally = rules.Tally()
        for start, end in pairwise(bounds):
            tally.add(many[start:end])
        assert tally.awaiting("2031-03", "DOLISA") == awaiting("2031-03", "DOLISA", many)
        assert (
            awaiting("2031-03", "DOLISA", []).digest != awaiting("2031-03", "DOLISA", many).digest
        )

    @pytest.mark.parametrize(
        "changed",
        [
            ITEMS[:2],  # an item stopped
            [*ITEMS, Item(4, 1, "MERITORIOUS", "OWN_ACCOUNT", "970418", "M4")],  # a new one
            [ITEMS[0], ITEMS[1], Item(3, 2_000_001, "MERITORIOUS", "OWN_ACCOUNT", "970418", "M3")],
            [ITEMS[0], ITEMS[1], Item(3, 2_000_000, "MERITORIOUS", "OWN_ACCOUNT", "970418", "M9")],
            [ITEMS[0], ITEMS[1], Item(3, 2_000_000, "MERITORIOUS", "OWN_ACCOUNT", "970405", "M3")],
            [
                ITEMS[0],
                ITEMS[1],
                Item(3, 2_000_000, "MERITORIOUS", "AUTHORISED_ACCOUNT", "970418", "M3"),
            ],
        ],
        ids=["stopped", "new", "amount", "method", "counterparty", "channel"],
    )
    def test_any_change_changes_it_and_the_old_one_is_refused(self, changed):
        shown = awaiting("2031-03", "DOLISA", ITEMS)
        now = awaiting("2031-03", "DOLISA", changed)
        assert now.digest != shown.digest
        error = refused(check_digest, shown.digest, now)
        assert (error.status, error.kind) == (409, "stale-approval")
        assert "changed since these totals were shown" in error.detail

    def test_period_and_agency_are_in_it(self):
        digest = awaiting("2031-03", "DOLISA", ITEMS).digest
        assert digest != awaiting("2031-04", "DOLISA", ITEMS).digest
        assert digest != awaiting("2031-03", "BHXH", ITEMS).digest

    def test_totals(self):
        shown = awaiting("2031-03", "DOLISA", ITEMS)
        assert (shown.count, shown.amount) == (3, 3_250_000)
        assert shown.by_scheme["SOCIAL_PROTECTION"] == Total(2, 1_250_000)
        assert shown.by_counterparty["VNPOST"] == Total(1, 750_000)
        assert shown.by_channel["OWN_ACCOUNT"] == Total(2, 2_500_000)


class TestEnvelope:
    REQUESTED: ClassVar[dict[str, Total]] = {"SOCIAL_PROTECTION": Total(2, 1_250_000)}

    def test_within_the_envelope_passes(self):
        excesses = envelope_excesses(self.REQUESTED, {}, {"SOCIAL_PROTECTION": 1_250_000})
        assert excesses == []
        check_envelopes(excesses, "DOLISA")

    def test_what_was_approved_before_counts(self):
        excesses = envelope_excesses(
            self.REQUESTED, {"SOCIAL_PROTECTION": 1_000_000}, {"SOCIAL_PROTECTION": 2_000_000}
        )
        assert [(e.scheme, e.envelope, e.requested, e.excess) for e in excesses] == [
            ("SOCIAL_PROTECTION", 2_000_000, 1_250_000, 250_000)
        ]
        error = refused(check_envelopes, excesses, "DOLISA")
        assert (error.status, error.kind) == (422, "over-envelope")
        assert "SOCIAL_PROTECTION" in error.detail and "250,000" in error.detail
        assert error.extensions["schemes"][0]["excess"] == 250_000

    def test_a_missing_envelope_refuses(self):
        excesses = envelope_excesses(self.REQUESTED, {}, {"MERITORIOUS": 10**9})
        assert [(e.scheme, e.envelope, e.excess) for e in excesses] == [
            ("SOCIAL_PROTECTION", None, 1_250_000)
        ]
        assert "no envelope" in refused(check_envelopes, excesses, "DOLISA").detail
