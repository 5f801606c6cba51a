"""Reason codes come from the ISO 20022 external code sets kept as data files."""

from __future__ import annotations

import pytest

from services.payout.adapters.banks.base import describe, is_permanent, load_reasons


class TestReasonCodeSets:
    @pytest.mark.parametrize(
        ("code", "kind"),
        [
            ("AC01", "permanent"),
            ("AC04", "permanent"),
            ("AC06", "permanent"),
            ("AG01", "permanent"),
            ("AM04", "transient"),
            ("AM05", "ambiguous"),
            ("BE01", "permanent"),
            ("MD07", "deceased"),
            ("MS03", "transient"),
            ("NARR", "ambiguous"),
            ("RC01", "permanent"),
            ("RR01", "permanent"),
            ("FF01", "permanent"),
            ("DUPL", "ambiguous"),
            ("TM01", "transient"),
            ("FOCR", "permanent"),
            ("ARDT", "ambiguous"),
        ],
    )
    def test_iso_codes_have_their_meaning_and_both_texts(self, code: str, kind: str) -> None:
        reason = describe(code)
        assert reason.kind == kind
        assert reason.permanent == (kind in ("permanent", "deceased"))
        assert reason.vi and reason.en and reason.vi != reason.en

    def test_unknown_or_missing_code_is_never_permanent(self) -> None:
        assert not is_permanent("XX99") and describe("XX99").kind == "ambiguous"
        assert not is_permanent(None)

    @pytest.mark.parametrize("code", ["AM05", "DUPL", "DUPLICATE_REQUEST", "HTTP_409"])
    def test_duplicate_means_inquire(self, code: str) -> None:
        assert describe(code).kind == "ambiguous" and not is_permanent(code)

    def test_every_file_row_has_a_known_kind(self, tmp_path) -> None:
        assert len(load_reasons()) >= 60
        bad = tmp_path / "bad.csv"
        bad.write_text("code,kind,vi,en\nAC01,maybe,x,y\n", encoding="utf-8")
        with pytest.raises(ValueError):
            load_reasons((bad,))
