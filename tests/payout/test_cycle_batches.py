"""A batch declares the count and sum of the attempts put in it (its control totals)."""

from __future__ import annotations

from services.payout.service_layer.cycles import batch_totals


class TestBatchTotals:
    def test_each_batch_counts_and_sums_its_own_attempts(self):
        assigned = [
            ("B1-1-BHXH-970436-0", "970436", 500_000),
            ("B1-1-BHXH-VNPOST-0", "VNPOST", 1_200_000),
            ("B1-1-BHXH-970436-0", "970436", 750_000),
            ("B1-1-BHXH-970436-1", "970436", 1),
            ("B1-1-DOLISA-970436-0", "970436", 9),
        ]
        assert batch_totals(assigned) == {
            "B1-1-BHXH-970436-0": ("BHXH", "970436", 2, 1_250_000),
            "B1-1-BHXH-970436-1": ("BHXH", "970436", 1, 1),
            "B1-1-BHXH-VNPOST-0": ("BHXH", "VNPOST", 1, 1_200_000),
            "B1-1-DOLISA-970436-0": ("DOLISA", "970436", 1, 9),
        }

    def test_no_attempt_makes_no_batch(self):
        assert batch_totals([]) == {}
