"""What an officer does next, as payout names it: every reason payout holds an installment for,
every anomaly it records and every way a payment fails has a step of its own; the console has
words for every step in both its languages, and none for a step payout does not name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.payout.domain import identity, methods, model, next_steps

ROOT = Path(__file__).resolve().parents[2]
PAYOUT = ROOT / "services" / "payout"
CONSOLE_JS = ROOT / "services" / "console" / "static" / "console.js"


def hold_reasons_payout_writes() -> set[str]:
    held = {value for name, value in vars(model).items() if name.startswith("HOLD_")}
    return held | set(identity.IDENTITY_HOLD_REASONS) | set(methods._HOLD_BY_STATUS.values())


def anomaly_kinds_payout_writes() -> set[str]:
    """The kinds named where payout records anomalies: the domain's constants and literals."""
    kinds = {
        value
        for name, value in vars(model).items()
        if name.startswith("ANOMALY_") and not name.endswith("_PREFIX")
    }
    for source in PAYOUT.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        kinds |= set(re.findall(r"anomaly=\"([A-Z_]+)\"", text))
        kinds |= set(re.findall(r"anomaly\(\s*\"([A-Z_]+)\"", text))
    return kinds


def console_words() -> dict[str, set[str]]:
    text = CONSOLE_JS.read_text(encoding="utf-8")
    block = text[text.index("const STEPS = {") :]
    block = block[: block.index("\n};")]
    words = {}
    for lang in ("vi", "en"):
        part = block[block.index(f"  {lang}: {{") :]
        part = part[: part.index("\n  },")]
        words[lang] = set(re.findall(r"^\s+([A-Z_]+): \"[^\"]+\",$", part, flags=re.M))
    return words


class TestEveryCaseHasItsStep:
    def test_every_hold_reason_payout_writes_has_its_own_step(self):
        assert hold_reasons_payout_writes() == next_steps.HOLD_REASONS
        for reason in next_steps.HOLD_REASONS:
            step = next_steps.for_installment(model.ON_HOLD, reason, None, None)
            assert step != next_steps.TELL_OPERATIONS, reason

    def test_every_anomaly_kind_payout_writes_has_its_own_step(self):
        written = anomaly_kinds_payout_writes()
        assert {"CONFLICTING_OUTCOME", "UNKNOWN_PAYMENT", "AMOUNT_MISSING"} <= written
        assert written <= next_steps.ANOMALY_KINDS, written - next_steps.ANOMALY_KINDS
        unreadable = f"{model.ANOMALY_UNREADABLE_PREFIX}AC01"
        assert next_steps.for_anomaly(unreadable) == next_steps.RECONCILE

    def test_a_kind_nobody_knows_goes_to_operations(self):
        assert next_steps.for_anomaly("SOMETHING_NEW") == next_steps.TELL_OPERATIONS
        assert next_steps.for_installment(model.ON_HOLD, "SOMETHING_NEW", None, None) == (
            next_steps.TELL_OPERATIONS
        )

    @pytest.mark.parametrize(
        ("state", "reason_code", "counterparty", "step"),
        [
            (model.FAILED, "AC06", "970436", next_steps.FIX_ACCOUNT),
            (model.FAILED, "AC04", "970436", next_steps.FIX_ACCOUNT),
            (model.FAILED, "MD07", "970436", next_steps.CHECK_DEATH),
            (model.FAILED, "AM04", "970436", next_steps.ASK_COUNTERPARTY),
            (model.RETURNED, model.REASON_REVERSED, "970436", next_steps.RECONCILE),
            (model.FAILED, "NOT_FOUND", model.VNPOST, next_steps.DECIDE_REPAYMENT),
            (model.FAILED, "REFUSED", model.VNPOST, next_steps.DECIDE_REPAYMENT),
            (model.FAILED, "DECEASED", model.VNPOST, next_steps.CHECK_DEATH),
            (model.SUBMITTED, None, model.VNPOST, next_steps.HAND_OVER),
            (model.SUBMITTED, None, "970436", next_steps.WAIT_OUTCOME),
            (model.SCHEDULED, None, "970436", next_steps.WAIT_SENDING),
            (model.SCHEDULED, None, model.VNPOST, next_steps.WAIT_SENDING),
            (model.SETTLED, None, "970436", next_steps.NOTHING),
            (model.PAID_CASH, None, model.VNPOST, next_steps.NOTHING),
        ],
    )
    def test_a_payment_that_failed_or_waits_names_what_to_do(
        self, state, reason_code, counterparty, step
    ):
        assert next_steps.for_installment(state, None, reason_code, counterparty) == step

    def test_an_account_to_fix_names_its_step(self):
        assert next_steps.for_method(model.METHOD_FAILED) == next_steps.FIX_ACCOUNT
        assert next_steps.for_method(model.METHOD_FLAGGED) == next_steps.CONFIRM_ACCOUNT

    def test_every_step_has_its_english_text(self):
        codes = {v for k, v in vars(next_steps).items() if k.isupper() and isinstance(v, str)}
        assert set(next_steps.TEXT) == codes
        assert next_steps.described(next_steps.HAND_OVER) == {
            "next_step": "HAND_OVER",
            "next_step_text": next_steps.TEXT[next_steps.HAND_OVER],
        }


class TestTheConsoleHasTheWords:
    def test_every_step_payout_names_has_vietnamese_and_english_words_and_no_other(self):
        words = console_words()
        assert words["vi"] == set(next_steps.TEXT), words["vi"] ^ set(next_steps.TEXT)
        assert words["en"] == set(next_steps.TEXT), words["en"] ^ set(next_steps.TEXT)
