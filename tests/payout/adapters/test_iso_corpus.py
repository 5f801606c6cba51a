"""Hand-written ISO 20022 messages (tests/payout/adapters/iso_fixtures), each citing the element
rules it exercises, read by the payout adapter with the outcomes the standard gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.payout.adapters.banks.iso20022 import parse_camt, parse_pain002

FIXTURES = Path(__file__).with_name("iso_fixtures")
CAMT_VERSIONS = ("camt054_04", "camt054_08", "camt054_10", "camt053_08")

# (status, end-to-end id, amount, reason code) per outcome, in the order of the message.
CAMT_CASES: dict[str, list[tuple[str, str, int, str | None]]] = {
    "single_booked_debit": [("SETTLED", "PAY-101-1", 1_500_000, None)],
    "batch_of_three": [
        ("SETTLED", "PAY-201-1", 1_000_000, None),
        ("SETTLED", "PAY-202-1", 1_500_000, None),
        ("SETTLED", "PAY-203-1", 2_000_000, None),
    ],
    "pending_entry": [("PENDING", "PAY-301-1", 1_500_000, None)],
    "information_entry": [],
    "reversal": [("REVERSED", "PAY-501-1", 1_500_000, "AC04")],
    "return_credit": [("RETURNED", "PAY-601-1", 1_500_000, "MD07")],
    "other_currency": [("UNREADABLE", "PAY-701-1", 0, "CURRENCY_NOT_VND")],
    "fraction": [("UNREADABLE", "PAY-801-1", 0, "AMOUNT_FRACTION")],
    "batch_count_mismatch": [("UNREADABLE", "PAY-901-1", 0, "BATCH_MISMATCH")],
    "one_unreadable_among_readable": [
        ("SETTLED", "PAY-1001-1", 1_000_000, None),
        ("UNREADABLE", "", 0, "NO_END_TO_END_ID"),
        ("SETTLED", "PAY-1003-1", 1_300_000, None),
    ],
    "redelivery": [("SETTLED", "PAY-1101-1", 1_500_000, None)],
}
BANK_CASES: dict[str, list[tuple[str, str, int, str | None]]] = {
    "bank_six_camt054_04_chf": [("UNREADABLE", "E2E-CH-0001", 0, "CURRENCY_NOT_VND")],
    "bank_six_camt054_04_vnd": [
        ("SETTLED", "PAY-1201-1", 1_500_000, None),
        ("SETTLED", "PAY-1202-1", 2_000_000, None),
    ],
    "bank_fi_camt054_08_eur": [
        ("UNREADABLE", "E2E-FI-0001", 0, "CURRENCY_NOT_VND"),
        ("UNREADABLE", "E2E-FI-0001", 0, "CURRENCY_NOT_VND"),
    ],
    "bank_fi_camt054_08_vnd": [
        ("SETTLED", "PAY-1301-1", 1_000_000, None),
        ("SETTLED", "PAY-1302-1", 1_500_000, None),
        ("RETURNED", "PAY-1301-1", 1_000_000, "AC04"),
    ],
}
# The file's transactions as payout knows them (end-to-end id → payment information id).
FILE_TRANSACTIONS = {
    "PAY-1-1": "BATCH-9",
    "PAY-8-1": "BATCH-9",
    "PAY-11-1": "PMT-A",
    "PAY-13-1": "PMT-A",
    "PAY-21-1": "PMT-B",
}
# (status, reason, level) per end-to-end id; an id absent here has no verdict.
PAIN_CASES: dict[str, dict[str, tuple[str, str | None, str]]] = {
    "group_rejected": dict.fromkeys(FILE_TRANSACTIONS, ("RJCT", "FF01", "GRP")),
    "group_accepted_technical": dict.fromkeys(FILE_TRANSACTIONS, ("ACTC", None, "GRP")),
    "partial": {
        "PAY-1-1": ("ACSC", None, "TX"),
        "PAY-2-1": ("ACCC", None, "TX"),
        "PAY-3-1": ("ACSP", None, "TX"),
        "PAY-4-1": ("ACWC", None, "TX"),
        "PAY-5-1": ("PDNG", None, "TX"),
        "PAY-6-1": ("RJCT", "AC04", "TX"),
        "PAY-7-1": ("RJCT", "MD07", "TX"),
    },
    "payment_information_rejected": {
        "PAY-11-1": ("RJCT", "AM18", "PMTINF"),
        "PAY-12-1": ("ACSC", None, "TX"),
        "PAY-13-1": ("RJCT", "AM18", "PMTINF"),
        "PAY-21-1": ("ACCP", None, "PMTINF"),
    },
}
CAMT_FIXTURES = {
    f"{v}_{name}": expected for v in CAMT_VERSIONS for name, expected in CAMT_CASES.items()
}
CAMT_FIXTURES.update(BANK_CASES)
PAIN_FIXTURES = {
    f"pain002_{v}_{name}": expected for v in ("03", "10") for name, expected in PAIN_CASES.items()
}


def read(name: str) -> bytes:
    return (FIXTURES / f"{name}.xml").read_bytes()


class TestCorpus:
    def test_every_fixture_is_expected_and_cites_its_rules(self) -> None:
        on_disk = {path.stem for path in FIXTURES.glob("*.xml")}
        assert on_disk == set(CAMT_FIXTURES) | set(PAIN_FIXTURES)
        for name in on_disk:
            text = read(name).decode()
            assert text.split("\n", 2)[1] == "<!--", name


class TestCamtFixtures:
    @pytest.mark.parametrize("name", sorted(CAMT_FIXTURES))
    def test_fixture_reads_to_its_outcomes(self, name: str) -> None:
        message_id, outcomes = parse_camt(read(name))
        assert message_id
        got = [(o.status, o.end_to_end_id, o.amount, o.reason_code) for o in outcomes]
        assert got == CAMT_FIXTURES[name]
        # Each outcome has its own identity, so a batch's transactions are never taken as replays.
        assert len({o.event_id for o in outcomes}) == len(outcomes)
        assert all(len(o.event_id) <= 100 for o in outcomes)

    @pytest.mark.parametrize("name", sorted(CAMT_FIXTURES))
    def test_redelivered_fixture_repeats_its_event_ids(self, name: str) -> None:
        first = [o.event_id for o in parse_camt(read(name))[1]]
        again = [o.event_id for o in parse_camt(read(name))[1]]
        assert first == again

    @pytest.mark.parametrize("version", CAMT_VERSIONS)
    def test_entry_without_references_is_identified_by_its_digest(self, version: str) -> None:
        [outcome] = parse_camt(read(f"{version}_redelivery"))[1]
        assert outcome.event_id.startswith("sha256:")
        [booked] = parse_camt(read(f"{version}_single_booked_debit"))[1]
        assert booked.event_id.startswith("FT31125001|") and booked.bank_reference == "FT31125001"

    @pytest.mark.parametrize("version", CAMT_VERSIONS)
    def test_pending_then_booked_entry_are_two_events(self, version: str) -> None:
        """A bank that books an entry it first sent as pending keeps its reference: the booked
        one must not be taken for a redelivery of the pending one."""
        pending = read(f"{version}_pending_entry").decode()
        coded = "<Sts><Cd>PDNG</Cd></Sts>" in pending
        booked = pending.replace(
            "<Sts><Cd>PDNG</Cd></Sts>" if coded else "<Sts>PDNG</Sts>",
            "<Sts><Cd>BOOK</Cd></Sts>" if coded else "<Sts>BOOK</Sts>",
        )
        [first] = parse_camt(pending.encode())[1]
        [second] = parse_camt(booked.encode())[1]
        assert (first.status, second.status) == ("PENDING", "SETTLED")
        assert first.event_id != second.event_id

    def test_batch_total_that_differs_from_its_transactions_is_unreadable(self) -> None:
        text = (
            read("camt054_08_batch_of_three")
            .decode()
            .replace('<TtlAmt Ccy="VND">4500000</TtlAmt>', '<TtlAmt Ccy="VND">4500001</TtlAmt>')
        )
        [outcome] = parse_camt(text.encode())[1]
        assert (outcome.status, outcome.reason_code) == ("UNREADABLE", "BATCH_MISMATCH")


class TestPain002Fixtures:
    @pytest.mark.parametrize("name", sorted(PAIN_FIXTURES))
    def test_fixture_reads_to_each_transactions_status(self, name: str) -> None:
        report = parse_pain002(read(name), FILE_TRANSACTIONS)
        assert report.original_message_id == "BATCH-9"
        got = {t.end_to_end_id: (t.status, t.reason_code, t.level) for t in report.transactions}
        assert got == PAIN_FIXTURES[name]

    @pytest.mark.parametrize("version", ("03", "10"))
    def test_group_rejection_reads_without_the_files_transactions(self, version: str) -> None:
        report = parse_pain002(read(f"pain002_{version}_group_rejected"))
        assert (report.group_status, report.group_reason_code, report.transactions) == (
            "RJCT",
            "FF01",
            (),
        )
